//! Kubernetes label selectors: the `a=b,c!=d,e in (x,y),!f` string form used on
//! the command line and in list queries, and the `matchLabels`/`matchExpressions`
//! form used inside specs. Both become one [`LabelSelector`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A conjunction of requirements; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Parses the string form: comma-separated requirements.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let fail = |reason: String| SelectorError { selector: input.to_string(), reason };
        let mut requirements = Vec::new();
        for part in split_top_level(input).map_err(&fail)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part).map_err(&fail)?);
        }
        Ok(Self { requirements })
    }
}

/// Splits on commas that are not inside a parenthesised value set.
fn split_top_level(input: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced ')'")?,
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    parts.push(&input[start..]);
    Ok(parts)
}

fn check_key(key: &str) -> Result<String, String> {
    crate::validation::check_qualified_name(key)?;
    Ok(key.to_string())
}

fn check_value(value: &str) -> Result<String, String> {
    crate::validation::check_label_value(value)?;
    Ok(value.to_string())
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a value set like (a,b), got {:?}", rest.trim()))?;
    inner.split(',').map(|v| check_value(v.trim())).collect()
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(check_key(key.trim())?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(check_key(key.trim())?, check_value(value.trim())?));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(check_key(key.trim())?, check_value(value.trim())?));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default().trim_start();
    if rest.is_empty() {
        return Ok(Requirement::Exists(check_key(key)?));
    }
    if let Some(set) = rest.strip_prefix("notin") {
        return Ok(Requirement::NotIn(check_key(key)?, parse_set(set)?));
    }
    if let Some(set) = rest.strip_prefix("in") {
        return Ok(Requirement::In(check_key(key)?, parse_set(set)?));
    }
    Err(format!("cannot parse requirement {part:?}: expected key=value, key!=value, key in (..), key notin (..), key or !key"))
}

/// The structured form used in specs (`clusterSelector:` and the like).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorSpec {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<SelectorExpression>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelectorExpression {
    pub key: String,
    pub operator: SelectorOperator,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelectorSpec {
    pub fn to_selector(&self) -> LabelSelector {
        let mut requirements: Vec<Requirement> = self.match_labels.iter().map(|(k, v)| Requirement::Equals(k.clone(), v.clone())).collect();
        requirements.extend(self.match_expressions.iter().map(|e| match e.operator {
            SelectorOperator::In => Requirement::In(e.key.clone(), e.values.clone()),
            SelectorOperator::NotIn => Requirement::NotIn(e.key.clone(), e.values.clone()),
            SelectorOperator::Exists => Requirement::Exists(e.key.clone()),
            SelectorOperator::DoesNotExist => Requirement::DoesNotExist(e.key.clone()),
        }));
        LabelSelector { requirements }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_and_matches_every_operator() {
        let l = labels(&[("env", "prod"), ("region", "eu"), ("tier", "web")]);
        let cases = [
            ("env=prod", true),
            ("env==prod", true),
            ("env=dev", false),
            ("env!=dev", true),
            ("env!=prod", false),
            ("region in (eu, us)", true),
            ("region in (us)", false),
            ("region notin (us)", true),
            ("missing notin (us)", true),
            ("tier", true),
            ("missing", false),
            ("!missing", true),
            ("!tier", false),
            ("env=prod,region in (eu,us),!missing", true),
            ("env=prod,region=us", false),
            ("", true),
        ];
        for (input, expected) in cases {
            let selector = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(selector.matches(&l), expected, "selector {input:?}");
        }
    }

    #[test]
    fn rejects_malformed_selectors() {
        for input in ["env in prod", "region in (eu", "a b c", "Bad Key=x", "env=has space"] {
            assert!(LabelSelector::parse(input).is_err(), "{input:?} should be rejected");
        }
    }

    #[test]
    fn structured_form_is_equivalent() {
        let spec = LabelSelectorSpec {
            match_labels: labels(&[("env", "prod")]),
            match_expressions: vec![SelectorExpression { key: "region".into(), operator: SelectorOperator::In, values: vec!["eu".into()] }],
        };
        let selector = spec.to_selector();
        assert!(selector.matches(&labels(&[("env", "prod"), ("region", "eu")])));
        assert!(!selector.matches(&labels(&[("env", "prod"), ("region", "us")])));
    }
}
