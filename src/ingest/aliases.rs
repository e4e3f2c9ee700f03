//! Local vocabulary as configuration: the header names and enumeration labels a district's
//! offices use beyond SPEC §2's (到/√ for present, 身份证号后六位 for the member id), per kind, in a
//! TOML file read by `ingest --aliases` and a pipeline's `aliases` key. The built-in names and
//! labels always apply; a file only adds.
//!
//! ```toml
//! [attendance.headers]
//! member_id = ["身份证号后六位"]
//!
//! [attendance.labels.status]
//! present = ["到", "√", "已参加"]
//! absent = ["缺", "×", "未参加"]
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::schema::normalise_header;
use crate::model::Kind;
use crate::model::kinds::FieldType;

/// Extra header names and enumeration labels, by kind and field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aliases {
    /// (kind, field) → normalised header names.
    headers: HashMap<(Kind, &'static str), Vec<String>>,
    /// (kind, field) → label → code.
    labels: HashMap<(Kind, &'static str), HashMap<String, &'static str>>,
}

/// A wrong entry in an aliases file: the file, the line of its key, and what is wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct AliasError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl Aliases {
    /// Read an aliases file, checking every kind, field and code against the record kinds.
    pub fn load(path: &Path) -> Result<Aliases, AliasError> {
        let text = std::fs::read_to_string(path).map_err(|e| AliasError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read it: {e}"),
        })?;
        Aliases::parse(&text).map_err(|(line, message)| AliasError { path: path.to_path_buf(), line, message })
    }

    fn parse(text: &str) -> Result<Aliases, (Option<usize>, String)> {
        let line_of = |key: &str| text.lines().position(|l| l.trim_start().starts_with(key)).map(|i| i + 1);
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1));
            (line, e.message().to_string())
        })?;
        let mut out = Aliases::default();
        for (kind_name, section) in &table {
            let kind = Kind::parse(kind_name).ok_or_else(|| {
                let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                (
                    line_of(&format!("[{kind_name}")),
                    format!("'{kind_name}' is not a record kind ({})", kinds.join(", ")),
                )
            })?;
            let section = section.as_table().ok_or((line_of(kind_name), format!("'{kind_name}' must be a table")))?;
            for (part, entries) in section {
                let entries = entries.as_table().ok_or((
                    line_of(&format!("[{kind_name}.{part}")),
                    format!("'{kind_name}.{part}' must be a table"),
                ))?;
                match part.as_str() {
                    "headers" => out.add_headers(kind, entries, &line_of)?,
                    "labels" => out.add_labels(kind, entries, &line_of)?,
                    other => {
                        return Err((
                            line_of(&format!("[{kind_name}.{other}")),
                            format!("'{kind_name}.{other}': expected 'headers' or 'labels'"),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    fn add_headers(
        &mut self,
        kind: Kind,
        entries: &toml::Table,
        line_of: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<(), (Option<usize>, String)> {
        for (field, names) in entries {
            let f = field_of(kind, field, line_of)?;
            let names = strings(names).ok_or((line_of(field), format!("'{field}' must be a list of header names")))?;
            self.headers.entry((kind, f)).or_default().extend(names.iter().map(|n| normalise_header(n)));
        }
        Ok(())
    }

    fn add_labels(
        &mut self,
        kind: Kind,
        entries: &toml::Table,
        line_of: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<(), (Option<usize>, String)> {
        for (field, codes) in entries {
            let f = field_of(kind, field, line_of)?;
            let FieldType::Enum(values) = kind.field(f).expect("found").ty else {
                return Err((
                    line_of(&format!("[{}.labels.{field}", kind.name())),
                    format!("'{field}' is not an enumeration"),
                ));
            };
            let codes = codes.as_table().ok_or((line_of(field), format!("'{field}' must map codes to labels")))?;
            for (code, labels) in codes {
                let Some(code) = values.iter().find(|v| v.code == code).map(|v| v.code) else {
                    let known: Vec<&str> = values.iter().map(|v| v.code).collect();
                    return Err((line_of(code), format!("'{code}' is not a code of {field} ({})", known.join(", "))));
                };
                let labels = strings(labels).ok_or((line_of(code), format!("'{code}' must be a list of labels")))?;
                let map = self.labels.entry((kind, f)).or_default();
                for l in labels {
                    if let Some(other) = map.insert(l.trim().to_string(), code)
                        && other != code
                    {
                        return Err((line_of(code), format!("the label '{l}' is given to both {other} and {code}")));
                    }
                }
            }
        }
        Ok(())
    }

    /// The field a normalised header names, by this file's names.
    pub fn field_for(&self, kind: Kind, normalised: &str) -> Option<&'static str> {
        self.headers
            .iter()
            .find(|((k, _), names)| *k == kind && names.iter().any(|n| n == normalised))
            .map(|((_, f), _)| *f)
    }

    /// The extra labels of a field: label → code.
    pub fn labels(&self, kind: Kind, field: &str) -> HashMap<String, &'static str> {
        self.labels.iter().find(|((k, f), _)| *k == kind && *f == field).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

fn field_of(
    kind: Kind,
    field: &str,
    line_of: &dyn Fn(&str) -> Option<usize>,
) -> Result<&'static str, (Option<usize>, String)> {
    kind.field(field).map(|f| f.name).ok_or_else(|| {
        let names: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
        (line_of(field), format!("'{field}' is not a field of {kind} ({})", names.join(", ")))
    })
}

fn strings(v: &toml::Value) -> Option<Vec<String>> {
    v.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_labels_are_added_per_kind() {
        let a = Aliases::parse(
            "[attendance.headers]\nmember_id = [\"身份证号 后六位\"]\n[attendance.labels.status]\npresent = [\"到\", \"√\"]\nabsent = [\"缺\"]\n",
        )
        .unwrap();
        assert_eq!(a.field_for(Kind::Attendance, &normalise_header("身份证号后六位")), Some("member_id"));
        assert_eq!(a.field_for(Kind::Points, &normalise_header("身份证号后六位")), None);
        assert_eq!(a.labels(Kind::Attendance, "status").get("√"), Some(&"present"));
    }

    #[test]
    fn wrong_entries_name_their_line() {
        for (text, line, says) in [
            ("[attendence.headers]\n", 1, "not a record kind"),
            ("[attendance.headers]\nmember = [\"x\"]\n", 2, "not a field of attendance"),
            ("[attendance.labels.status]\n\nhere = [\"到\"]\n", 3, "not a code of status"),
            ("[attendance.labels.event_id]\nx = [\"y\"]\n", 1, "not an enumeration"),
            // Codes are read in order of name: absent, then present, where the clash is found.
            ("[attendance.labels.status]\npresent = [\"到\"]\nabsent = [\"到\"]\n", 2, "both absent and present"),
            ("[attendance.headers]\nmember_id = \"x\"\n", 2, "must be a list"),
            ("[attendance.headers\n", 1, ""),
        ] {
            let (l, message) = Aliases::parse(text).unwrap_err();
            assert_eq!(l, Some(line), "{text}: {message}");
            assert!(message.contains(says), "{text}: {message}");
        }
    }
}
