//! Output the way kubectl users expect: aligned tables, or the object as YAML or JSON.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Yaml,
    Json,
}

/// Renders `value` as YAML or JSON (`Table` is the caller's job).
pub fn serialize<T: Serialize>(value: &T, format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Json => Ok(serde_json::to_string_pretty(value)? + "\n"),
        _ => serde_saphyr::to_string(value).context("rendering YAML"),
    }
}

/// Columns separated by three spaces, each as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Age as kubectl prints it: `45s`, `12m`, `5h`, `3d`.
pub fn age(timestamp: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(created) = timestamp.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else {
        return "<unknown>".into();
    };
    let seconds = (now - created.with_timezone(&Utc)).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["shop".to_string(), "storefront".to_string(), "1".to_string()],
            vec!["payments".to_string(), "api".to_string(), "12".to_string()],
        ];
        assert_eq!(
            table(&["NAMESPACE", "NAME", "N"], &rows),
            "NAMESPACE   NAME         N\nshop        storefront   1\npayments    api          12\n"
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z").expect("time").with_timezone(&Utc);
        assert_eq!(age(Some("2026-01-01T23:59:30Z"), now), "30s");
        assert_eq!(age(Some("2026-01-01T23:00:00Z"), now), "60m");
        assert_eq!(age(Some("2026-01-01T00:00:00Z"), now), "24h");
        assert_eq!(age(Some("2025-12-20T00:00:00Z"), now), "13d");
        assert_eq!(age(None, now), "<unknown>");
    }
}
