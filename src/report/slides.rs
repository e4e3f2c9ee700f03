//! Meeting slides: the agenda and the key charts as 1920×1080 PNGs in `slides/`, and
//! `slides.html`, which shows them one at a time (arrow keys, space, a click), offline: the
//! images are in the page itself.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;

use crate::charts::{AgendaLine, Chart};
use crate::output::write_atomically;
use crate::review::problems::Problem;

/// The charts a meeting looks at, in order, when the pack has them.
const KEY_CHARTS: [&str; 6] = [
    "problem-flow",
    "trend-composite_score",
    "trend-attendance_rate",
    "funnel-attendance_rate-community",
    "funnel-attendance_rate-branch",
    "grades",
];

/// The agenda as a chart: the first `size` open problems by priority, grouped by unit.
pub fn agenda_chart(title: &str, problems: &[Problem], size: usize) -> Chart {
    let lines = super::agenda_groups(problems, size)
        .into_iter()
        .flat_map(|list| {
            list.into_iter().enumerate().map(|(i, p)| AgendaLine {
                unit: if i == 0 { p.unit_name.clone() } else { String::new() },
                text: format!("{}. {}", p.priority.unwrap_or(0), super::weak_note_or_evidence(p)),
                severe: p.severity >= 3,
            })
        })
        .collect();
    Chart::Agenda { id: "agenda".to_string(), title: format!("{title} · 会诊议程"), lines }
}

/// Write `out/slides/` (agenda first, then the key charts the pack has) and
/// `out/slides.html`; the folder is drawn beside and moved in whole.
pub fn write(agenda: &Chart, charts: &[Chart], title: &str, out: &Path) -> Result<PathBuf> {
    let staging = out.join(".slides.tmp");
    let dest = out.join("slides");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    // A chart that does not fit twice over would keep text under 20 pixels. (The agenda
    // always goes: it fits twice up to 18 lines.)
    let fits = |c: &&Chart| crate::charts::slide_scale(c) >= 2.0;
    let picked: Vec<&Chart> = std::iter::once(agenda)
        .chain(KEY_CHARTS.iter().filter_map(|id| charts.iter().find(|c| c.id() == *id)).filter(fits))
        .collect();
    let mut pngs = Vec::new();
    for (i, chart) in picked.iter().enumerate() {
        let name = format!("{:02}-{}.png", i + 1, chart.id());
        crate::charts::to_slide_png(chart, &staging.join(&name))?;
        pngs.push(name);
    }
    if dest.exists() {
        std::fs::remove_dir_all(&dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    std::fs::rename(&staging, &dest).with_context(|| format!("moving the slides into {}", dest.display()))?;
    let mut images = String::new();
    for name in &pngs {
        let bytes = std::fs::read(dest.join(name)).with_context(|| format!("reading {name}"))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        images.push_str(&format!("<img src=\"data:image/png;base64,{b64}\">\n"));
    }
    let html = PAGE.replace("{title}", &escape(title)).replace("{images}", &images);
    let path = out.join("slides.html");
    write_atomically(&path, html.as_bytes())?;
    Ok(path)
}

/// Text for HTML (the title has unit names from the data).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>
html, body { margin: 0; height: 100%; background: #000; }
img { display: none; width: 100vw; height: 100vh; object-fit: contain; }
img.on { display: block; }
#n { position: fixed; right: 14px; bottom: 8px; color: #888; font: 16px sans-serif; }
</style>
</head>
<body>
{images}<div id="n"></div>
<script>
const slides = [...document.querySelectorAll('img')];
let at = 0;
function show(k) {
  at = Math.max(0, Math.min(slides.length - 1, k));
  slides.forEach((s, j) => { s.className = j === at ? 'on' : ''; });
  document.getElementById('n').textContent = (at + 1) + ' / ' + slides.length;
}
addEventListener('keydown', e => {
  if (['ArrowRight', 'ArrowDown', 'PageDown', ' ', 'Enter'].includes(e.key)) show(at + 1);
  if (['ArrowLeft', 'ArrowUp', 'PageUp', 'Backspace'].includes(e.key)) show(at - 1);
  if (e.key === 'Home') show(0);
  if (e.key === 'End') show(slides.length - 1);
});
addEventListener('click', () => show(at + 1));
show(0);
</script>
</body>
</html>
"#;
