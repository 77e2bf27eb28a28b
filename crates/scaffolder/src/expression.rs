//! Template expressions as Backstage writes them: `${{ parameters.name }}`
//! in step inputs and outputs (a whole-string expression keeps its type, a
//! string with expressions inside becomes text), and the same syntax with
//! `{% %}` blocks in the files `fetch:template` renders. Nunjucks' filters
//! templates use are here too: `dump`, `parseRepoUrl`, `projectSlug`, `pick`.
//! Evaluation is fuel-limited.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Value as Jinja};
use serde_json::Value;

/// Steps of evaluation one expression or file may take.
const FUEL: u64 = 200_000;

thread_local! {
    /// Bytes written by the render running on this thread.
    static WRITTEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Writes `text`, or stops the render once it has written more than a file may hold.
fn write_bounded(out: &mut minijinja::Output, text: &str) -> Result<(), minijinja::Error> {
    let written = WRITTEN.with(|w| {
        let total = w.get().saturating_add(text.len());
        w.set(total);
        total
    });
    if written > crate::budget::MAX_FILE_BYTES {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            crate::budget::too_large("the rendered text", written, crate::budget::MAX_FILE_BYTES),
        ));
    }
    out.write_str(text).map_err(minijinja::Error::from)
}

pub struct Expressions {
    env: Environment<'static>,
    /// The same, writing each value as a placeholder for [`crate::structured`].
    structured: Environment<'static>,
}

impl std::fmt::Debug for Expressions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Expressions")
    }
}

impl Default for Expressions {
    fn default() -> Self {
        Self::new()
    }
}

/// `github.com?owner=org&repo=name` → `{host, owner, repo}`.
fn parse_repo_url(url: String) -> Jinja {
    let (host, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let mut parsed = serde_json::Map::new();
    parsed.insert("host".into(), Value::String(host.to_string()));
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if let Some((key, value)) = pair.split_once('=') {
            parsed.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
    Jinja::from_serialize(Value::Object(parsed))
}

impl Expressions {
    pub fn new() -> Expressions {
        let mut env = Environment::new();
        // `${{ }}` for values, as Backstage; blocks and comments as nunjucks.
        if let Ok(syntax) =
            SyntaxConfig::builder().variable_delimiters("${{", "}}").block_delimiters("{%", "%}").comment_delimiters("{#", "#}").build()
        {
            env.set_syntax(syntax);
        }
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(16);
        env.set_formatter(|out, _state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            write_bounded(out, &value.to_string())
        });
        env.set_keep_trailing_newline(true);
        // JSON quotes and escapes itself: structured files take it as it is.
        env.add_filter("dump", |value: Jinja| Jinja::from_safe_string(serde_json::to_string(&value).unwrap_or_default()));
        env.add_filter("parseRepoUrl", parse_repo_url);
        env.add_filter("projectSlug", |url: String| {
            let parsed = parse_repo_url(url);
            let part = |key: &str| parsed.get_attr(key).ok().filter(|v| !v.is_undefined()).map(|v| v.to_string()).unwrap_or_default();
            format!("{}/{}", part("owner"), part("repo"))
        });
        env.add_filter("pick", |value: Jinja, key: String| value.get_attr(&key).unwrap_or(Jinja::UNDEFINED));
        let mut structured = env.clone();
        structured.set_formatter(|out, _state, value| {
            use minijinja::value::ValueKind;
            match value.kind() {
                _ if value.is_undefined() || value.is_none() => Ok(()),
                ValueKind::Number | ValueKind::Bool => write_bounded(out, &value.to_string()),
                _ if value.is_safe() => write_bounded(out, &crate::structured::safe_placeholder(&value.to_string())),
                _ => write_bounded(out, &crate::structured::placeholder(&value.to_string())),
            }
        });
        Expressions { env, structured }
    }

    /// Evaluates every expression in `value` with `context` as the variables.
    pub fn evaluate(&self, value: &Value, context: &Value) -> Result<Value, String> {
        match value {
            Value::String(text) => self.evaluate_text(text, context),
            Value::Array(items) => items.iter().map(|v| self.evaluate(v, context)).collect::<Result<_, _>>().map(Value::Array),
            Value::Object(map) => {
                map.iter().map(|(k, v)| Ok((k.clone(), self.evaluate(v, context)?))).collect::<Result<_, String>>().map(Value::Object)
            }
            other => Ok(other.clone()),
        }
    }

    fn evaluate_text(&self, text: &str, context: &Value) -> Result<Value, String> {
        let trimmed = text.trim();
        if let Some(inner) = trimmed.strip_prefix("${{").and_then(|t| t.strip_suffix("}}"))
            && !inner.contains("${{")
            && !inner.contains("}}")
        {
            let expression = self.env.compile_expression(inner.trim()).map_err(|e| format!("{text:?}: {e}"))?;
            let result = expression.eval(Jinja::from_serialize(context)).map_err(|e| format!("{text:?}: {e}"))?;
            if result.is_undefined() {
                return Ok(Value::Null);
            }
            return serde_json::to_value(&result).map_err(|e| format!("{text:?}: {e}"));
        }
        if text.contains("${{") || text.contains("{%") {
            return self.render(text, context).map(Value::String);
        }
        Ok(Value::String(text.to_string()))
    }

    /// Renders a text (a file's content or name).
    pub fn render(&self, text: &str, context: &Value) -> Result<String, String> {
        WRITTEN.with(|w| w.set(0));
        let rendered = self.env.render_str(text, Jinja::from_serialize(context)).map_err(|e| format!("{e}"))?;
        bounded_text(rendered)
    }

    /// Renders a YAML or JSON file so that values stay data ([`crate::structured`]).
    pub fn render_structured(&self, text: &str, context: &Value, file: &str) -> Result<String, String> {
        WRITTEN.with(|w| w.set(0));
        let rendered = self.structured.render_str(text, Jinja::from_serialize(context)).map_err(|e| format!("{e}"))?;
        bounded_text(crate::structured::place_values(&rendered, file)?)
    }
}

/// A rendered text within what a file may hold (the template's own text counts too).
fn bounded_text(text: String) -> Result<String, String> {
    if text.len() > crate::budget::MAX_FILE_BYTES {
        return Err(crate::budget::too_large("the rendered text", text.len(), crate::budget::MAX_FILE_BYTES));
    }
    Ok(text)
}

/// Whether `text` matches a JSON Schema `pattern` (a regular expression, unanchored).
pub fn matches_pattern(pattern: &str, text: &str) -> bool {
    regex::Regex::new(pattern).map(|re| re.is_match(text)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_expressions_keep_their_type_and_embedded_ones_become_text() {
        let e = Expressions::new();
        let context = json!({"parameters": {"name": "cart", "replicas": 3, "repoUrl": "github.com?owner=shop&repo=cart"}, "steps": {"publish": {"output": {"url": "https://x"}}}});
        assert_eq!(e.evaluate(&json!("${{ parameters.replicas }}"), &context), Ok(json!(3)));
        assert_eq!(e.evaluate(&json!("This is ${{ parameters.name }}"), &context), Ok(json!("This is cart")));
        assert_eq!(e.evaluate(&json!("${{ steps['publish'].output.url }}"), &context), Ok(json!("https://x")));
        assert_eq!(
            e.evaluate(&json!("${{ parameters.repoUrl | parseRepoUrl }}"), &context),
            Ok(json!({"host": "github.com", "owner": "shop", "repo": "cart"}))
        );
        assert_eq!(e.evaluate(&json!("${{ parameters.repoUrl | projectSlug }}"), &context), Ok(json!("shop/cart")));
        assert_eq!(e.evaluate(&json!({"list": ["${{ parameters.name | dump }}"]}), &context), Ok(json!({"list": ["\"cart\""]})));
        assert_eq!(e.evaluate(&json!("${{ parameters.missing }}"), &context), Ok(Value::Null));
        assert!(e.evaluate(&json!("${{ parameters.name | nosuchfilter }}"), &context).is_err());
    }

    #[test]
    fn files_render_with_blocks_and_runaway_templates_stop() {
        let e = Expressions::new();
        let context = json!({"values": {"name": "cart", "http": true}});
        assert_eq!(
            e.render("{% if values.http %}port: 8080{% endif %}\nname: ${{ values.name }}\n", &context),
            Ok("port: 8080\nname: cart\n".into())
        );
        assert!(e.render("{% for i in range(1000000) %}{% for j in range(1000000) %}x{% endfor %}{% endfor %}", &context).is_err());
        assert!(matches_pattern("^[a-z-]+$", "cart-api") && !matches_pattern("^[a-z-]+$", "Cart"));
    }
}
