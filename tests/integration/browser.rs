//! Opening a report in a real headless browser (Debian's chromium). Needs `DANGJIAN_CHROMIUM`
//! (scripts/test installs chromium and sets it); without it the check fails and says how to
//! run it.

use std::path::Path;
use std::process::Command;

pub fn check_in_chromium(html: &Path, tmp: &Path) {
    let chromium = match std::env::var("DANGJIAN_CHROMIUM") {
        Ok(c) if !c.is_empty() => c,
        _ => panic!("this check needs DANGJIAN_CHROMIUM (a headless chromium): run scripts/test"),
    };
    let netlog = tmp.join("netlog.json");
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", tmp.join("profile").display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("突出问题清单"), "the page rendered: {}", &dom[..dom.len().min(300)]);
    assert!(!dom.contains("class=\"pwned\""), "a script from the data ran");
    assert!(dom.contains("&lt;script&gt;document"), "the hostile name shows as text");
    // The browser's own log of network activity: Chromium still talks to its own services
    // (updates, accounts, time) whatever the flags, so those hosts are set aside; any other
    // address would come from the page.
    let log = std::fs::read_to_string(&netlog).expect("chromium wrote its net log");
    assert!(log.contains("file://"), "the net log covers the page load");
    let browser_own = [".google.com", ".googleapis.com", ".gstatic.com", ".gvt1.com", ".googleusercontent.com"];
    for scheme in ["\"http://", "\"https://", "\"ws://", "\"wss://"] {
        for (at, _) in log.match_indices(scheme) {
            let rest = &log[at + scheme.len()..];
            let host: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-').collect();
            let dotted = format!(".{host}");
            assert!(browser_own.iter().any(|d| dotted.ends_with(d)), "the page made a request to {host}");
        }
    }
}
