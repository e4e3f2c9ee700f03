//! Opening a report in a real headless browser (Debian's chromium). Needs `DANGJIAN_CHROMIUM`
//! (scripts/test installs chromium and sets it); without it the check fails and says how to
//! run it.

use std::path::{Path, PathBuf};
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

/// What the browser drew one element's own text with.
#[derive(Debug)]
pub struct Drawn {
    pub node: String,
    pub text: String,
    /// (family, embedded in the page) of every font that drew a glyph of it.
    pub fonts: Vec<(String, bool)>,
}

/// A fontconfig setup with the machine's fonts less any that has Chinese: the browser then
/// sees what a fresh server sees, whatever this machine has installed.
fn without_cjk_fonts(tmp: &Path) -> PathBuf {
    let fc_list = |config: Option<&Path>| -> Vec<String> {
        let mut cmd = Command::new("fc-list");
        cmd.args([":lang=zh", "file"]);
        if let Some(c) = config {
            cmd.env("FONTCONFIG_FILE", c);
        }
        let out = cmd.output().expect("fc-list runs (fontconfig comes with chromium)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().trim_end_matches(':').to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let rejects: String = fc_list(None).iter().map(|f| format!("<glob>{f}</glob>")).collect();
    let conf = tmp.join("fonts-without-cjk.conf");
    std::fs::write(
        &conf,
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig>\
             <include ignore_missing=\"yes\">/etc/fonts/fonts.conf</include>\
             <selectfont><rejectfont>{rejects}</rejectfont></selectfont></fontconfig>\n"
        ),
    )
    .unwrap();
    assert_eq!(fc_list(Some(&conf)), Vec::<String>::new(), "no font with Chinese is left for the browser");
    conf
}

/// Open `html` in headless Chromium on a machine with no Chinese font, and ask it (DevTools
/// `CSS.getPlatformFontsForNode`, through tests/interop/browser_fonts.py) which fonts drew the
/// text of every element that holds Chinese characters.
pub fn fonts_drawn(html: &Path, tmp: &Path) -> Vec<Drawn> {
    let chromium = match std::env::var("DANGJIAN_CHROMIUM") {
        Ok(c) if !c.is_empty() => c,
        _ => panic!("this check needs DANGJIAN_CHROMIUM (a headless chromium): run scripts/test"),
    };
    let conf = without_cjk_fonts(tmp);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/browser_fonts.py");
    let profile = tempfile::tempdir_in(tmp).unwrap();
    let out = Command::new(super::interop::python())
        .arg(script)
        .arg(&chromium)
        .arg(html)
        .arg(profile.path())
        .env("FONTCONFIG_FILE", &conf)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "browser_fonts.py failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Drawn {
                node: v["node"].as_str().unwrap().to_string(),
                text: v["text"].as_str().unwrap().to_string(),
                fonts: v["fonts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| (f["familyName"].as_str().unwrap().to_string(), f["isCustomFont"].as_bool().unwrap()))
                    .collect(),
            }
        })
        .collect()
}

/// Every Chinese text of the page, HTML and inline SVG alike, is drawn by the font the page
/// embeds; and the same page without its face is not (so this check can fail).
pub fn check_fonts(html: &Path, tmp: &Path) {
    let drawn = fonts_drawn(html, tmp);
    assert!(drawn.len() > 50, "the page has Chinese text: {} elements", drawn.len());
    assert!(drawn.iter().any(|d| d.node == "text"), "inline SVG text was checked too");
    for d in &drawn {
        assert!(
            !d.fonts.is_empty()
                && d.fonts.iter().all(|(family, embedded)| *embedded && family == "WenQuanYi Micro Hei"),
            "<{}> {:?} was drawn with {:?}",
            d.node,
            d.text,
            d.fonts
        );
    }
    let page = std::fs::read_to_string(html).unwrap();
    let start = page.find("@font-face").expect("the page has a face");
    let end = start + page[start..].find('}').unwrap() + 1;
    let bare = tmp.join("without-face.html");
    std::fs::write(&bare, format!("{}{}", &page[..start], &page[end..])).unwrap();
    let drawn = fonts_drawn(&bare, tmp);
    assert!(
        drawn.iter().any(|d| d.fonts.iter().any(|(_, embedded)| !embedded)),
        "without its face the page falls back"
    );
}

/// The font a page or SVG carries (the first `@font-face` data URI), as TrueType bytes.
pub fn embedded_font(page: &str) -> Vec<u8> {
    use base64::Engine;
    let start =
        page.find("url(data:font/ttf;base64,").expect("a TrueType data URI") + "url(data:font/ttf;base64,".len();
    let end = start + page[start..].find(')').unwrap();
    base64::engine::general_purpose::STANDARD.decode(&page[start..end]).unwrap()
}

/// Every Chinese character of `page` (outside its face) is in the embedded font's cmap.
pub fn check_cmap_covers(page: &str, what: &str) {
    use ab_glyph::Font;
    let ttf = embedded_font(page);
    let font = ab_glyph::FontRef::try_from_slice(&ttf).expect("the embedded font parses");
    let start = page.find("@font-face").unwrap();
    let end = start + page[start..].find('}').unwrap();
    let text = format!("{}{}", &page[..start], &page[end..]);
    let cjk: std::collections::BTreeSet<char> = text
        .chars()
        .filter(|c| ('\u{3000}'..='\u{9fff}').contains(c) || ('\u{ff00}'..='\u{ffef}').contains(c))
        .collect();
    assert!(!cjk.is_empty(), "{what} has Chinese text");
    let missing: String = cjk.iter().filter(|c| font.glyph_id(**c).0 == 0).collect();
    assert!(missing.is_empty(), "{what}: not in the embedded font: {missing}");
}

/// How many A4 pages Chromium prints `html` on (its own print, the page's @page rules).
pub fn printed_pages(html: &Path, tmp: &Path) -> usize {
    let chromium = std::env::var("DANGJIAN_CHROMIUM").expect("DANGJIAN_CHROMIUM: run scripts/test");
    let pdf = tmp.join("printed.pdf");
    let profile = tempfile::tempdir_in(tmp).unwrap();
    let out = Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-pdf-header-footer"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&pdf).expect("chromium wrote the PDF");
    // Each page is an object of /Type /Page (the page tree itself is /Pages).
    let text = String::from_utf8_lossy(&bytes);
    text.match_indices("/Type /Page").filter(|(at, m)| !text[at + m.len()..].starts_with('s')).count()
}
