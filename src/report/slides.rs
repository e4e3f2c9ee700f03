//! Meeting slides: the agenda and the key charts as 1920×1080 PNGs in `slides/`, and
//! `slides.html`, which shows them one at a time (arrow keys, space, a click), offline: the
//! images are in the page itself.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;

use crate::charts::{AgendaLine, Chart};
use crate::output::{stage_then_move, write_atomically};
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

/// The page that shows the slides (minijinja, escaping the title: it has names from the data).
const PAGE: &str = include_str!("slides.html");

/// Write `out/slides/` (agenda first, then the key charts the pack has) and
/// `out/slides.html`. The slides are drawn beside the folder and moved in whole; slides of an
/// earlier run that this one did not draw are removed after.
pub fn write(agenda: &Chart, charts: &[Chart], title: &str, out: &Path) -> Result<PathBuf> {
    // A chart that does not fit twice over would keep text under 20 pixels. (The agenda
    // always goes: it fits twice up to 18 lines.)
    let fits = |c: &&Chart| crate::charts::slide_scale(c) >= 2.0;
    let picked: Vec<&Chart> = std::iter::once(agenda)
        .chain(KEY_CHARTS.iter().filter_map(|id| charts.iter().find(|c| c.id() == *id)).filter(fits))
        .collect();
    let dest = out.join("slides");
    let pngs = stage_then_move(&dest, |staging| {
        picked
            .iter()
            .enumerate()
            .map(|(i, chart)| {
                let path = staging.join(format!("{:02}-{}.png", i + 1, chart.id()));
                crate::charts::to_slide_png(chart, &path)?;
                Ok(path)
            })
            .collect()
    })?;
    remove_stale(&dest, &pngs)?;
    let images = pngs
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut env = minijinja::Environment::new();
    env.add_template("slides.html", PAGE).context("loading the slides template")?;
    let html = env
        .get_template("slides.html")?
        .render(minijinja::context! { title, images })
        .context("rendering slides.html")?;
    let path = out.join("slides.html");
    write_atomically(&path, html.as_bytes())?;
    Ok(path)
}

/// Remove the numbered slides (`NN-id.png`) of an earlier run that are not among `kept`.
fn remove_stale(dest: &Path, kept: &[PathBuf]) -> Result<()> {
    for entry in std::fs::read_dir(dest).with_context(|| format!("listing {}", dest.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let numbered = name.len() > 3 && name[..2].bytes().all(|b| b.is_ascii_digit()) && &name[2..3] == "-";
        if numbered && name.ends_with(".png") && !kept.contains(&path) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_keeps_its_own_slides_and_the_user_files_and_escapes_the_title() {
        let d = tempfile::tempdir().unwrap();
        let slides = d.path().join("slides");
        std::fs::create_dir_all(&slides).unwrap();
        for old in ["01-agenda.png", "02-grades.png", "notes.txt"] {
            std::fs::write(slides.join(old), "old").unwrap();
        }
        let agenda = Chart::Agenda { id: "agenda".into(), title: "议程".into(), lines: vec![] };
        let path = write(&agenda, &[], "<b>红旗</b> & 社区", d.path()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&slides)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["01-agenda.png", "notes.txt"]);
        assert_ne!(std::fs::read(slides.join("01-agenda.png")).unwrap(), b"old");
        let html = std::fs::read_to_string(path).unwrap();
        assert!(html.contains("<title>&lt;b&gt;红旗&lt;&#x2f;b&gt; &amp; 社区</title>"), "{html}");
        assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 1);
        assert!(!d.path().join(".slides.tmp").exists());
    }
}
