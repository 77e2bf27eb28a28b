//! The built-in actions: they read the caller's sources and change only
//! the in-memory workspace. Paths are checked: nothing names a place
//! outside the workspace.

use serde_json::{Value, json};

use crate::expression::Expressions;
use crate::{Sources, Workspace};

/// A relative path inside the workspace, without `.`, `..` or a leading `/`.
fn clean(path: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("path {path:?} leaves the workspace")),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

fn join(base: &str, path: &str) -> String {
    if base.is_empty() {
        path.to_string()
    } else if path.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{path}")
    }
}

/// `*` (not `/`), `**` (anything) and `?` in a path pattern.
fn glob(pattern: &str) -> Result<regex::Regex, String> {
    let mut re = String::from("^");
    let mut chars = pattern.trim_start_matches("./").chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                    re.push_str("(.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| format!("pattern {pattern:?}: {e}"))
}

fn text<'a>(input: &'a Value, field: &str) -> Option<&'a str> {
    input.get(field).and_then(Value::as_str)
}

fn source<'a>(sources: &'a Sources, input: &Value) -> Result<&'a Workspace, String> {
    let url = text(input, "url").ok_or("input.url: expected the location of the files to fetch")?;
    sources.get(url).ok_or_else(|| format!("input.url: nothing to fetch at {url:?}"))
}

pub fn run(
    action: &str,
    input: &Value,
    workspace: &mut Workspace,
    sources: &Sources,
    expressions: &Expressions,
    log: &mut dyn FnMut(String),
) -> Result<Value, String> {
    match action {
        "fetch:plain" => {
            let files = source(sources, input)?;
            let target = clean(text(input, "targetPath").unwrap_or(""))?;
            for (path, content) in files {
                workspace.insert(join(&target, path), content.clone());
            }
            log(format!("fetched {} files", files.len()));
        }
        "fetch:template" => {
            let files = source(sources, input)?;
            let target = clean(text(input, "targetPath").unwrap_or(""))?;
            let context = json!({"values": input.get("values").cloned().unwrap_or_else(|| json!({}))});
            let verbatim: Vec<regex::Regex> = ["copyWithoutTemplating", "copyWithoutRender"]
                .iter()
                .filter_map(|field| input.get(*field).and_then(Value::as_array))
                .flatten()
                .filter_map(Value::as_str)
                .map(glob)
                .collect::<Result<_, _>>()?;
            for (path, content) in files {
                let copy_as_is = verbatim.iter().any(|re| re.is_match(path));
                let name = if copy_as_is {
                    path.clone()
                } else {
                    expressions.render(path, &context).map_err(|e| format!("file name {path}: {e}"))?
                };
                let name = clean(&name)?;
                if name.is_empty() {
                    continue;
                }
                let structured = [".yaml", ".yml", ".json"].iter().any(|ext| name.to_ascii_lowercase().ends_with(ext));
                let content = match std::str::from_utf8(content) {
                    Ok(text) if !copy_as_is && structured => {
                        expressions.render_structured(text, &context, &name).map_err(|e| format!("{path}: {e}"))?.into_bytes()
                    }
                    Ok(text) if !copy_as_is => expressions.render(text, &context).map_err(|e| format!("{path}: {e}"))?.into_bytes(),
                    _ => content.clone(),
                };
                workspace.insert(join(&target, &name), content);
            }
            log(format!("templated {} files", files.len()));
        }
        "fs:rename" => {
            for (i, file) in
                input.get("files").and_then(Value::as_array).ok_or("input.files: expected a list of {from, to}")?.iter().enumerate()
            {
                let from = clean(text(file, "from").ok_or(format!("input.files[{i}].from: expected a path"))?)?;
                let to = clean(text(file, "to").ok_or(format!("input.files[{i}].to: expected a path"))?)?;
                let overwrite = file.get("overwrite").and_then(Value::as_bool).unwrap_or(false);
                let moving: Vec<String> = workspace.keys().filter(|p| **p == from || p.starts_with(&format!("{from}/"))).cloned().collect();
                if moving.is_empty() {
                    return Err(format!("input.files[{i}].from: {from} is not in the workspace"));
                }
                for path in moving {
                    let destination = join(&to, path.strip_prefix(&from).unwrap_or_default().trim_start_matches('/'));
                    if workspace.contains_key(&destination) && !overwrite {
                        return Err(format!("input.files[{i}].to: {destination} exists (set overwrite: true)"));
                    }
                    if let Some(content) = workspace.remove(&path) {
                        workspace.insert(destination, content);
                    }
                }
            }
        }
        "fs:delete" => {
            for pattern in input.get("files").and_then(Value::as_array).ok_or("input.files: expected a list of paths or patterns")? {
                let pattern = pattern.as_str().ok_or("input.files: expected paths")?;
                let re = glob(&clean(pattern)?)?;
                let prefix = format!("{}/", clean(pattern)?);
                workspace.retain(|path, _| !(re.is_match(path) || path.starts_with(&prefix)));
            }
        }
        "debug:log" => {
            if let Some(message) = text(input, "message") {
                log(message.to_string());
            }
            if input.get("listWorkspace").is_some_and(|v| v.as_bool() == Some(true) || v.is_string()) {
                for path in workspace.keys() {
                    log(format!("  {path}"));
                }
            }
        }
        other => return Err(format!("{other} is not a built-in action")),
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(files: &[&str]) -> Workspace {
        files.iter().map(|f| (f.to_string(), b"x".to_vec())).collect()
    }

    #[test]
    fn paths_stay_inside_the_workspace_and_globs_match_like_backstage() {
        assert_eq!(clean("./a/./b/"), Ok("a/b".into()));
        assert!(clean("../etc/passwd").is_err());
        assert!(glob("**/*.png").expect("glob").is_match("assets/img/logo.png"));
        assert!(glob("**/*.png").expect("glob").is_match("logo.png"));
        assert!(!glob("*.png").expect("glob").is_match("img/logo.png"));
    }

    #[test]
    fn rename_and_delete_change_the_workspace() {
        let expressions = Expressions::new();
        let mut ws = workspace(&["ci/main.yml", "README.md", "tmp/a", "tmp/b"]);
        let mut log = |_: String| {};
        run("fs:rename", &json!({"files": [{"from": "ci", "to": ".github/workflows"}]}), &mut ws, &Sources::new(), &expressions, &mut log)
            .expect("rename");
        run("fs:delete", &json!({"files": ["tmp"]}), &mut ws, &Sources::new(), &expressions, &mut log).expect("delete");
        assert_eq!(ws.keys().collect::<Vec<_>>(), [".github/workflows/main.yml", "README.md"]);
        let clash = run(
            "fs:rename",
            &json!({"files": [{"from": "README.md", "to": ".github/workflows/main.yml"}]}),
            &mut ws,
            &Sources::new(),
            &expressions,
            &mut log,
        );
        assert!(clash.expect_err("exists").contains("overwrite"));
        let missing = run("fs:rename", &json!({"files": [{"from": "nope", "to": "x"}]}), &mut ws, &Sources::new(), &expressions, &mut log);
        assert!(missing.expect_err("missing").contains("not in the workspace"));
    }
}
