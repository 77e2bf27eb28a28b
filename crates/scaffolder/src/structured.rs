//! Template values in YAML and JSON files are data, never syntax.
//!
//! `fetch:template` renders such a file twice over: first the template runs
//! with the real values (so `if` and `for` see them), but every value it
//! writes is written as a placeholder, a private-use sentinel around the
//! value's hex encoding, which is a plain YAML word. The result parses with
//! the structure the template's author wrote, whatever the values are. Then
//! each scalar that holds placeholders is written again with the values in
//! it: raw where every value is a plain word (so `replicas: ${{ values.n }}`
//! stays a number), otherwise as one JSON-quoted string, and inside a block
//! scalar (`|`, `>`) indented to the block. A value can so never add a key,
//! a document, a link or a Location: the injection of a `links:` entry
//! through a description becomes that description's text.
//!
//! `dump`'s output (and anything else marked safe) is written as it is where
//! it is a whole scalar (it quotes and escapes itself), and as text inside a
//! larger one; numbers and booleans are written as they are. A value that
//! holds placeholders (a macro's output) becomes one value. A file that is not YAML even with
//! the placeholders (a Helm template, say) gets its values raw, but none may
//! hold a line break.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';
/// A value its filter already quoted (`dump`'s JSON): written as it is when
/// it is a whole scalar, and as text anywhere else.
const SAFE_OPEN: char = '\u{E002}';
const SAFE_CLOSE: char = '\u{E003}';

fn encode(text: &str, open: char, close: char) -> String {
    // A value that holds placeholders (a macro's output) is one value: no placeholder nests in another.
    let text = substitute(text, |value, _| value.to_string());
    let mut out = String::with_capacity(text.len() * 2 + 6);
    out.push(open);
    for byte in text.as_bytes() {
        out.push_str(&format!("{byte:02x}"));
    }
    out.push(close);
    out
}

/// The placeholder a value is written as.
pub(crate) fn placeholder(text: &str) -> String {
    encode(text, OPEN, CLOSE)
}

/// The placeholder of a value that quotes itself.
pub(crate) fn safe_placeholder(text: &str) -> String {
    encode(text, SAFE_OPEN, SAFE_CLOSE)
}

/// Each placeholder of `text` replaced by what `replace` makes of its value
/// (and whether it quotes itself).
fn substitute(text: &str, mut replace: impl FnMut(&str, bool) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find([OPEN, SAFE_OPEN]) {
        out.push_str(&rest[..start]);
        let safe = rest[start..].starts_with(SAFE_OPEN);
        let close = if safe { SAFE_CLOSE } else { CLOSE };
        let after = &rest[start + OPEN.len_utf8()..];
        let Some(end) = after.find(close) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let hex = &after[..end];
        let bytes: Vec<u8> =
            (0..hex.len() / 2).filter_map(|i| hex.get(i * 2..i * 2 + 2)).filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
        out.push_str(&replace(&String::from_utf8_lossy(&bytes), safe));
        rest = &after[end + close.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// A text that is one self-quoting placeholder and nothing else: its value.
fn whole_safe(text: &str) -> Option<String> {
    let inner = text.strip_prefix(SAFE_OPEN)?.strip_suffix(SAFE_CLOSE)?;
    if inner.contains([OPEN, CLOSE, SAFE_OPEN, SAFE_CLOSE]) {
        return None;
    }
    Some(substitute(text, |value, _| value.to_string()))
}

fn values_of(text: &str) -> Vec<String> {
    let mut values = Vec::new();
    substitute(text, |value, _| {
        values.push(value.to_string());
        String::new()
    });
    values
}

/// Every value as its text.
fn as_text(text: &str) -> String {
    substitute(text, |value, _| value.to_string())
}

/// A value that changes nothing about a plain scalar it is written into.
fn is_word(value: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._/@+=~-".contains(c);
    !value.is_empty()
        && value.chars().all(|c| allowed(c) || c == ' ')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !value.ends_with(' ')
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Writes the values into a rendered YAML or JSON text (see the module docs).
pub fn place_values(rendered: &str, file: &str) -> Result<String, String> {
    if !rendered.contains([OPEN, SAFE_OPEN]) {
        return Ok(rendered.to_string());
    }
    let mut scalars: Vec<(usize, usize, String, ScalarStyle, usize)> = Vec::new();
    let mut parser = Parser::new_from_str(rendered);
    let mut parsed = true;
    while let Some(event) = parser.next_event() {
        match event {
            Ok((Event::Scalar(value, style, _, _), span)) if value.contains([OPEN, SAFE_OPEN]) => {
                let (Some(start), Some(end)) = (span.start.byte_offset(), span.end.byte_offset()) else {
                    parsed = false;
                    break;
                };
                scalars.push((start, end, value.into_owned(), style, span.start.col()));
            }
            Ok(_) => {}
            Err(_) => {
                parsed = false;
                break;
            }
        }
    }
    if !parsed {
        // Not YAML even as its author wrote it: values go in as they are, on one line.
        return match values_of(rendered).iter().find(|v| v.contains(['\n', '\r'])) {
            Some(_) => Err(format!("{file}: a value with a line break cannot be written into a file that is not YAML")),
            None => Ok(as_text(rendered)),
        };
    }
    let mut out = String::with_capacity(rendered.len());
    let mut at = 0;
    for (start, end, cooked, style, column) in scalars {
        if start < at || end > rendered.len() {
            return Err(format!("{file}: cannot place the template's values (overlapping scalars)"));
        }
        let source = &rendered[start..end];
        let replacement = match style {
            ScalarStyle::Plain if whole_safe(source).is_some() => whole_safe(source).unwrap_or_default(),
            ScalarStyle::Plain if values_of(source).iter().all(|v| is_word(v)) => as_text(source),
            ScalarStyle::Literal | ScalarStyle::Folded => {
                // Every line a value adds is indented to the block, so it stays the block's text.
                let indent = format!("\n{}", " ".repeat(column));
                substitute(source, |value, _| value.replace("\r\n", "\n").replace('\r', "\n").replace('\n', &indent))
            }
            _ => quoted(&as_text(&cooked)),
        };
        out.push_str(&rendered[at..start]);
        out.push_str(&replacement);
        at = end;
    }
    out.push_str(&rendered[at..]);
    // What is left is outside any scalar (a comment): one line of text.
    let out = substitute(&out, |value, _| value.replace(['\n', '\r'], " "));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, values: &[&str]) -> String {
        let mut text = template.to_string();
        for (i, value) in values.iter().enumerate() {
            text = text.replace(&format!("${i}"), &placeholder(value));
        }
        place_values(&text, "catalog-info.yaml").expect("placed")
    }

    fn parse(text: &str) -> serde_json::Value {
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn ordinary_values_read_as_they_would_unescaped() {
        let out = render("name: $0\nreplicas: $1\nref: Application/$2/$0\n", &["cart", "3", "shop"]);
        assert_eq!(out, "name: cart\nreplicas: 3\nref: Application/shop/cart\n");
        assert_eq!(parse(&out)["replicas"], 3);
    }

    #[test]
    fn a_value_never_adds_structure() {
        let injection = "x\"\n  links:\n    - url: javascript:alert(1)\n---\napiVersion: backstage.io/v1alpha1\nkind: Location";
        let template = "metadata:\n  name: $0\n  description: Runs \"$0\" daily\n  title: $0\nspec: {owner: $0}\ntags: [a, $0]\n";
        let out = render(template, &[injection]);
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).expect("one document");
        assert_eq!(documents.len(), 1, "{out}");
        let document = &documents[0];
        assert_eq!(document["metadata"]["name"], injection);
        assert_eq!(document["metadata"]["description"], format!("Runs \"{injection}\" daily"));
        assert!(document["metadata"].get("links").is_none(), "{out}");
        assert_eq!(document["spec"]["owner"], injection);
        assert_eq!(document["tags"][1], injection);
        let flow = render("spec: {owner: $0}\n", &["a, url: javascript:alert(1)"]);
        assert_eq!(parse(&flow)["spec"].as_object().expect("map").len(), 1, "{flow}");
    }

    #[test]
    fn self_quoting_values_stay_data_inside_a_larger_scalar_and_nothing_nests() {
        let injected = "\"a\", url: javascript:x";
        let whole = format!("cmd: [sh, -c, {}]\n", safe_placeholder(&serde_json::to_string("run it").expect("json")));
        assert_eq!(place_values(&whole, "f.yaml").expect("placed"), "cmd: [sh, -c, \"run it\"]\n");
        let inside = format!("spec: {{owner: team-{}}}\n", safe_placeholder(injected));
        let spec = parse(&place_values(&inside, "f.yaml").expect("placed"));
        assert_eq!(spec["spec"].as_object().expect("map").len(), 1);
        assert_eq!(spec["spec"]["owner"], format!("team-{injected}"));
        let macro_output = placeholder(&format!("x {}", placeholder("\"}\n  links: [javascript:x]")));
        let nested = parse(&place_values(&format!("a: {{b: {macro_output}}}\n"), "f.yaml").expect("placed"));
        assert_eq!(nested["a"].as_object().expect("map").len(), 1, "{nested}");
    }

    #[test]
    fn block_scalars_keep_added_lines_inside() {
        let out = render("notes: |\n  Owner: $0\nother: 1\n", &["a\nother: 2\n---"]);
        let value = parse(&out);
        assert_eq!(value["other"], 1, "{out}");
        assert_eq!(value["notes"], "Owner: a\nother: 2\n---\n");
    }

    #[test]
    fn comments_and_files_that_are_not_yaml_take_values_on_one_line() {
        assert_eq!(render("# for $0\na: 1\n", &["x\ny: 2"]), "# for x y: 2\na: 1\n");
        let not_yaml = format!("a: b: c\nimage: {}\n", placeholder("nginx"));
        assert_eq!(place_values(&not_yaml, "t.yaml").expect("raw"), "a: b: c\nimage: nginx\n");
        assert!(place_values(&format!("a: b: c\nd: {}\n", placeholder("1\nb: 2")), "t.yaml").is_err());
    }
}
