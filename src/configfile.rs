//! The TOML files people edit (the indicator catalogue, pipelines): pointing an error at the
//! line that holds it.

/// Where a TOML error is, as (line, message): the line of the span's start, or, for an unknown
/// key (whose error spans its whole table), the line of the key itself.
pub fn locate_toml_error(text: &str, e: &toml::de::Error) -> (Option<usize>, String) {
    let message = e.message().trim().to_string();
    let mut line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
    if let (Some(from), Some(key)) = (line, message.strip_prefix("unknown field `").and_then(|m| m.split('`').next())) {
        let is_key = |l: &str| l.trim_start().strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('='));
        if let Some(i) = text.lines().enumerate().skip(from - 1).find(|(_, l)| is_key(l)).map(|(i, _)| i) {
            line = Some(i + 1);
        }
    }
    (line, message)
}
