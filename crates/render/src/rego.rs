//! Organization policies in Rego, evaluated with regorus on each rendered
//! target. A policy is a module whose `deny` rules (and optionally `warn`)
//! produce messages:
//!
//! ```rego
//! package heimdall.images
//! deny contains msg if {
//!     some obj in input.objects
//!     some c in obj.spec.template.spec.containers
//!     not startswith(c.image, "registry.example.com/")
//!     msg := sprintf("%s/%s: image %s is not from registry.example.com", [obj.kind, obj.metadata.name, c.image])
//! }
//! ```
//!
//! Input: `{app, environment, cluster, namespace, objects}`.

use std::num::NonZeroU32;
use std::time::Duration;

use heimdall_model::Problem;
use heimdall_model::spec::platform::Enforcement;
use serde::Serialize;
use serde_json::Value;

/// Wall-clock budget of one policy evaluation: the one place rendering
/// depends on the machine. regorus' interpreter offers no instruction limit,
/// so a runaway policy is stopped by time; only a policy that runs for
/// seconds (and so blocks, see [`Policies::evaluate`]) can be decided
/// differently on a slower machine. The clock builtins (`time.now_ns`) are
/// not compiled in (regorus without its `time` feature).
const TIME_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub policy: String,
    pub message: String,
    pub enforcement: Enforcement,
}

struct Entry {
    name: String,
    package: String,
    enforcement: Enforcement,
}

#[derive(Default)]
pub struct Policies {
    engine: Option<regorus::Engine>,
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| &e.name)).finish()
    }
}

impl Policies {
    /// Parses every policy; errors are `(policy name, problem)`.
    pub fn compile(policies: &[(String, String, Enforcement)]) -> Result<Policies, Vec<(String, Problem)>> {
        if policies.is_empty() {
            return Ok(Policies::default());
        }
        let mut engine = regorus::Engine::new();
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: TIME_LIMIT,
            check_interval: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
        });
        let mut entries: Vec<Entry> = Vec::new();
        let mut problems = Vec::new();
        for (name, rego, enforcement) in policies {
            match engine.add_policy(format!("{name}.rego"), rego.clone()) {
                Ok(package) => {
                    if let Some(other) = entries.iter().find(|e| e.package == package) {
                        problems.push((
                            name.clone(),
                            Problem::new(
                                "spec.rego",
                                format!("{package} is also the package of policy {:?}; each policy needs its own package", other.name),
                            ),
                        ));
                    }
                    entries.push(Entry { name: name.clone(), package, enforcement: *enforcement });
                }
                Err(e) => problems.push((name.clone(), Problem::new("spec.rego", format!("not valid Rego: {e}")))),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Policies { engine: Some(engine), entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every finding of every policy for `input`. A policy that fails or runs
    /// out of time is itself a finding that blocks, so a broken policy never
    /// silently allows.
    pub fn evaluate(&self, input: Value) -> Vec<Finding> {
        let Some(engine) = &self.engine else { return Vec::new() };
        let mut engine = engine.clone();
        let mut findings = Vec::new();
        engine.set_input(regorus::Value::from(input));
        for entry in &self.entries {
            for (rule, enforcement) in [("deny", entry.enforcement), ("warn", Enforcement::Warn)] {
                // eval_rule skips parsing a query; a rule the module lacks is Undefined.
                match engine.eval_rule(format!("{}.{rule}", entry.package)) {
                    Ok(value) => {
                        findings.extend(messages(&value).into_iter().map(|message| Finding {
                            policy: entry.name.clone(),
                            message,
                            enforcement,
                        }));
                    }
                    // A module need not define both rules.
                    Err(e) if e.to_string().contains("not a valid rule path") => {}
                    Err(e) => findings.push(Finding {
                        policy: entry.name.clone(),
                        message: format!("policy failed to evaluate: {e}"),
                        enforcement: Enforcement::Deny,
                    }),
                }
            }
        }
        findings.sort_by(|a, b| (&a.policy, &a.message).cmp(&(&b.policy, &b.message)));
        findings.dedup();
        findings
    }
}

/// Messages from a rule's value: a set or list of strings, or of objects with `msg`.
fn messages(value: &regorus::Value) -> Vec<String> {
    let json: Value = value.to_json_str().ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null);
    let items = match json {
        Value::Array(items) => items,
        Value::Null | Value::Bool(false) => Vec::new(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => s,
            Value::Object(ref o) if o.get("msg").is_some_and(Value::is_string) => o["msg"].as_str().unwrap_or_default().to_string(),
            other => other.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NO_LATEST: &str = r#"
package heimdall.latest
deny contains msg if {
    some obj in input.objects
    some c in obj.spec.template.spec.containers
    endswith(c.image, ":latest")
    msg := sprintf("%s %s: image %s uses the :latest tag", [obj.kind, obj.metadata.name, c.image])
}
warn contains "be careful" if { input.environment.name == "prod" }
"#;

    fn input(image: &str, env: &str) -> Value {
        json!({"environment": {"name": env}, "objects": [{"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}]})
    }

    #[test]
    fn deny_and_warn_messages_are_reported() {
        let policies = Policies::compile(&[("no-latest".into(), NO_LATEST.into(), Enforcement::Deny)]).expect("compiles");
        assert!(policies.evaluate(input("nginx:1.27", "dev")).is_empty());
        let findings = policies.evaluate(input("nginx:latest", "prod"));
        assert_eq!(
            findings,
            vec![
                Finding {
                    policy: "no-latest".into(),
                    message: "Deployment web: image nginx:latest uses the :latest tag".into(),
                    enforcement: Enforcement::Deny
                },
                Finding { policy: "no-latest".into(), message: "be careful".into(), enforcement: Enforcement::Warn },
            ]
        );
    }

    #[test]
    fn bad_rego_and_shared_packages_are_refused() {
        let err =
            Policies::compile(&[("broken".into(), "package x\ndeny contains msg if {".into(), Enforcement::Deny)]).expect_err("invalid");
        assert_eq!(err[0].0, "broken");
        let err =
            Policies::compile(&[("a".into(), NO_LATEST.into(), Enforcement::Deny), ("b".into(), NO_LATEST.into(), Enforcement::Deny)])
                .expect_err("duplicate package");
        assert!(err[0].1.message.contains("also the package"), "{:?}", err);
    }

    #[test]
    fn a_policy_that_runs_away_is_stopped_and_blocks() {
        let looping = r#"
package heimdall.slow
deny contains msg if {
    some i in numbers.range(1, 100000)
    some j in numbers.range(1, 100000)
    i * j < 0
    msg := "never"
}
"#;
        let policies = Policies::compile(&[("slow".into(), looping.into(), Enforcement::Warn)]).expect("compiles");
        let findings = policies.evaluate(json!({"objects": []}));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].enforcement, Enforcement::Deny);
        assert!(findings[0].message.contains("failed to evaluate"), "{}", findings[0].message);
    }

    /// Rendering is deterministic: the clock builtins are not compiled in,
    /// so a policy that reads the time blocks instead of passing today and
    /// failing tomorrow.
    #[test]
    fn a_policy_that_reads_the_clock_blocks() {
        let clock = "package heimdall.clock\ndeny contains \"late\" if { time.now_ns() > 0 }\n";
        let findings = match Policies::compile(&[("clock".into(), clock.into(), Enforcement::Warn)]) {
            Ok(policies) => policies.evaluate(json!({"objects": []})),
            Err(problems) => {
                problems.into_iter().map(|(policy, p)| Finding { policy, message: p.message, enforcement: Enforcement::Deny }).collect()
            }
        };
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].enforcement, Enforcement::Deny);
        assert!(findings[0].message.contains("time.now_ns"), "{}", findings[0].message);
    }
}
