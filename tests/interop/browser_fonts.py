"""Which fonts a real browser draws a page's Chinese text with.

Usage: browser_fonts.py CHROMIUM PAGE.html PROFILE_DIR

Opens the page in headless Chromium and asks, through the DevTools protocol over a pipe
(--remote-debugging-pipe: the browser reads commands on fd 3 and writes on fd 4, one JSON
message per NUL), which platform fonts rendered the text of every element holding Chinese
characters (CSS.getPlatformFontsForNode). Prints one JSON object per line:
{"node": <its name>, "text": <the element's own text, cut>, "fonts": [{"familyName", "isCustomFont", "glyphCount"}]}.
Standard library only.
"""
import json
import os
import subprocess
import sys


def cjk(s):
    return any("\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" for c in s)


class Browser:
    def __init__(self, chromium, profile):
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def fds():
            # Copies first: a pipe end may itself be fd 3 or 4, and dup2 onto itself would
            # keep its close-on-exec flag.
            r, w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buf = b""
        self.next_id = 0

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self.read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def read(self):
        while b"\0" not in self.buf:
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed its pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def close(self):
        try:
            self.call("Browser.close")
        except RuntimeError:
            pass
        self.proc.wait(timeout=30)


def text_holders(node, out):
    """Elements whose own text children hold Chinese characters (not in head/style/script)."""
    if node.get("nodeName") in ("HEAD", "STYLE", "SCRIPT", "TITLE"):
        return
    own = "".join(c.get("nodeValue", "") for c in node.get("children", []) if c.get("nodeType") == 3)
    if node.get("nodeType") == 1 and cjk(own):
        out.append((node["nodeId"], node["nodeName"], own.strip()[:40]))
    for c in node.get("children", []):
        text_holders(c, out)


def main():
    chromium, page, profile = sys.argv[1:4]
    b = Browser(chromium, profile)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.call("Page.enable", session=s)
        b.call("Page.navigate", {"url": "file://" + os.path.abspath(page)}, session=s)
        # Wait for the document and its fonts (a data-URI face still decodes asynchronously).
        b.call("Runtime.evaluate", {"expression": "new Promise(r => { const go = () => document.fonts.ready.then(() => r(document.fonts.status)); document.readyState === 'complete' ? go() : addEventListener('load', go); })",
                                    "awaitPromise": True}, session=s)
        # Folded lists (<details>) are laid out only when open: open them all.
        b.call("Runtime.evaluate", {"expression": "document.querySelectorAll('details').forEach(d => d.open = true); new Promise(r => requestAnimationFrame(() => r(1)))",
                                    "awaitPromise": True}, session=s)
        b.call("DOM.enable", session=s)
        b.call("CSS.enable", session=s)
        root = b.call("DOM.getDocument", {"depth": -1}, session=s)["root"]
        holders = []
        text_holders(root, holders)
        for node_id, name, text in holders:
            fonts = b.call("CSS.getPlatformFontsForNode", {"nodeId": node_id}, session=s)["fonts"]
            print(json.dumps({"node": name, "text": text, "fonts": fonts}, ensure_ascii=False))
    finally:
        b.close()


if __name__ == "__main__":
    main()
