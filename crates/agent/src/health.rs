//! Health of live objects, judged the way `kubectl rollout status` and Argo
//! CD judge it. Pure: it reads objects the agent already fetched.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Ordered from best to worst: an application is as healthy as its worst object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Health {
    Healthy,
    Progressing,
    Missing,
    Degraded,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Progressing => "Progressing",
            Health::Missing => "Missing",
            Health::Degraded => "Degraded",
        }
    }
}

/// One object's verdict, with why when it is not healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub health: Health,
    pub message: Option<String>,
}

impl Assessment {
    fn healthy() -> Self {
        Assessment { health: Health::Healthy, message: None }
    }

    fn new(health: Health, message: impl Into<String>) -> Self {
        Assessment { health, message: Some(message.into()) }
    }
}

fn int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object.pointer("/status/conditions")?.as_array()?.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_is(object: &Value, kind: &str, status: &str) -> bool {
    condition(object, kind).and_then(|c| c.get("status")).and_then(Value::as_str) == Some(status)
}

fn condition_message(object: &Value, kind: &str) -> String {
    condition(object, kind)
        .and_then(|c| c.get("message").or_else(|| c.get("reason")))
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_string()
}

/// The controller has not yet seen the newest spec.
fn not_observed(object: &Value) -> bool {
    match (int(object, "/metadata/generation"), int(object, "/status/observedGeneration")) {
        (Some(generation), Some(observed)) => observed < generation,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Judges one live object. `None` means it does not exist.
pub fn assess(live: Option<&Value>) -> Assessment {
    let Some(object) = live else { return Assessment::new(Health::Missing, "not found in the cluster") };
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "Deployment" => deployment(object),
        "StatefulSet" => statefulset(object),
        "DaemonSet" => daemonset(object),
        "Job" => job(object),
        "CronJob" => cronjob(object),
        "Service" => service(object),
        "Ingress" => load_balanced(object, "ingress"),
        "PersistentVolumeClaim" => match object.pointer("/status/phase").and_then(Value::as_str) {
            Some("Bound") => Assessment::healthy(),
            Some("Lost") => Assessment::new(Health::Degraded, "the claim lost its volume"),
            phase => Assessment::new(Health::Progressing, format!("waiting for a volume ({})", phase.unwrap_or("Pending"))),
        },
        "CustomResourceDefinition" => {
            if condition_is(object, "Established", "True") {
                Assessment::healthy()
            } else {
                Assessment::new(Health::Progressing, "not established yet")
            }
        }
        _ => conditions(object),
    }
}

fn deployment(object: &Value) -> Assessment {
    if object.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Assessment::healthy();
    }
    if condition(object, "Progressing").and_then(|c| c.get("reason")).and_then(Value::as_str) == Some("ProgressDeadlineExceeded") {
        return Assessment::new(Health::Degraded, format!("rollout stuck: {}", condition_message(object, "Progressing")));
    }
    if not_observed(object) {
        return Assessment::new(Health::Progressing, "waiting for the rollout to start");
    }
    let wanted = int(object, "/spec/replicas").unwrap_or(1);
    let updated = int(object, "/status/updatedReplicas").unwrap_or(0);
    let available = int(object, "/status/availableReplicas").unwrap_or(0);
    let total = int(object, "/status/replicas").unwrap_or(0);
    if updated < wanted {
        return Assessment::new(Health::Progressing, format!("{updated} of {wanted} replicas updated"));
    }
    if total > updated {
        return Assessment::new(Health::Progressing, format!("{} old replicas pending termination", total - updated));
    }
    if available < wanted {
        return Assessment::new(Health::Progressing, format!("{available} of {wanted} replicas available"));
    }
    Assessment::healthy()
}

fn statefulset(object: &Value) -> Assessment {
    if not_observed(object) {
        return Assessment::new(Health::Progressing, "waiting for the rollout to start");
    }
    let wanted = int(object, "/spec/replicas").unwrap_or(1);
    let ready = int(object, "/status/readyReplicas").unwrap_or(0);
    let updated = int(object, "/status/updatedReplicas").unwrap_or(0);
    let rolling = object.pointer("/spec/updateStrategy/type").and_then(Value::as_str) != Some("OnDelete");
    if rolling && updated < wanted {
        return Assessment::new(Health::Progressing, format!("{updated} of {wanted} replicas updated"));
    }
    if ready < wanted {
        return Assessment::new(Health::Progressing, format!("{ready} of {wanted} replicas ready"));
    }
    let current = object.pointer("/status/currentRevision");
    if rolling && current.is_some() && current != object.pointer("/status/updateRevision") {
        return Assessment::new(Health::Progressing, "rolling out a new revision");
    }
    Assessment::healthy()
}

fn daemonset(object: &Value) -> Assessment {
    if not_observed(object) {
        return Assessment::new(Health::Progressing, "waiting for the rollout to start");
    }
    let wanted = int(object, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = int(object, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(object, "/status/numberAvailable").unwrap_or(0);
    if updated < wanted {
        return Assessment::new(Health::Progressing, format!("{updated} of {wanted} pods updated"));
    }
    if available < wanted {
        return Assessment::new(Health::Progressing, format!("{available} of {wanted} pods available"));
    }
    Assessment::healthy()
}

fn job(object: &Value) -> Assessment {
    if condition_is(object, "Failed", "True") {
        return Assessment::new(Health::Degraded, format!("job failed: {}", condition_message(object, "Failed")));
    }
    if condition_is(object, "Complete", "True") {
        return Assessment::healthy();
    }
    Assessment::new(Health::Progressing, format!("{} pods active", int(object, "/status/active").unwrap_or(0)))
}

fn cronjob(object: &Value) -> Assessment {
    let scheduled = object.pointer("/status/lastScheduleTime").and_then(Value::as_str);
    let succeeded = object.pointer("/status/lastSuccessfulTime").and_then(Value::as_str);
    let active = object.pointer("/status/active").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    match (scheduled, succeeded) {
        // RFC 3339 times in UTC compare as strings.
        (Some(scheduled), succeeded) if !active && succeeded.is_none_or(|s| s < scheduled) => {
            Assessment::new(Health::Degraded, format!("the run scheduled at {scheduled} did not succeed"))
        }
        _ => Assessment::healthy(),
    }
}

fn service(object: &Value) -> Assessment {
    match object.pointer("/spec/type").and_then(Value::as_str) {
        Some("LoadBalancer") => load_balanced(object, "load balancer"),
        _ => Assessment::healthy(),
    }
}

fn load_balanced(object: &Value, what: &str) -> Assessment {
    let assigned = object.pointer("/status/loadBalancer/ingress").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    if assigned { Assessment::healthy() } else { Assessment::new(Health::Progressing, format!("waiting for the {what} address")) }
}

/// Custom resources (Crossplane, CloudNativePG...): a `Ready` or
/// `Available` condition when they have one.
fn conditions(object: &Value) -> Assessment {
    for kind in ["Ready", "Available"] {
        if condition_is(object, kind, "True") {
            return Assessment::healthy();
        }
        if condition_is(object, kind, "False") {
            return Assessment::new(Health::Progressing, format!("{kind}=False: {}", condition_message(object, kind)));
        }
    }
    Assessment::healthy()
}

/// Whether an object of a claim instance is ready for consumers: built-in
/// kinds when healthy; custom resources (Crossplane, CloudNativePG,
/// Strimzi) only when they say so with a `Ready` (or `Available`) condition
/// that is `True`, because a provider that has not reported yet is not done.
/// The message states the conditions and phase as the provider put them.
pub fn claim_readiness(live: Option<&Value>) -> (bool, String) {
    let Some(object) = live else { return (false, "not found in the cluster".into()) };
    let conditions: Vec<String> = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some(format!("{}={}", c.get("type")?.as_str()?, c.get("status")?.as_str()?)))
        .collect();
    let mut said = conditions.join(", ");
    if let Some(phase) = object.pointer("/status/phase").and_then(Value::as_str) {
        said = if said.is_empty() { format!("phase: {phase}") } else { format!("{said}; phase: {phase}") };
    }
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    let built_in = group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io");
    let ready = if built_in {
        assess(Some(object)).health == Health::Healthy
    } else {
        ["Ready", "Available"].iter().any(|kind| condition_is(object, kind, "True")) && !condition_is(object, "Synced", "False")
    };
    if said.is_empty() {
        said = if ready { "ready".into() } else { "waiting for the provider to report Ready".into() };
    }
    (ready, said)
}

/// Pods that cannot run: crash loops, image pulls, bad configuration.
pub fn pod_problem(pod: &Value) -> Option<String> {
    const FATAL: &[&str] = &["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName"];
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let statuses = ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten();
    for status in statuses {
        let reason = status.pointer("/state/waiting/reason").and_then(Value::as_str);
        if let Some(reason) = reason.filter(|r| FATAL.contains(r)) {
            let container = status.get("name").and_then(Value::as_str).unwrap_or_default();
            let detail = status.pointer("/state/waiting/message").and_then(Value::as_str).map(|m| format!(": {m}")).unwrap_or_default();
            return Some(format!("pod {name} container {container}: {reason}{detail}"));
        }
    }
    None
}

/// Services whose selector matches no ready endpoint, given the
/// EndpointSlices of their namespace.
pub fn service_without_endpoints(service: &Value, slices: &[&Value]) -> Option<String> {
    let name = service.pointer("/metadata/name").and_then(Value::as_str)?;
    let selects = service.pointer("/spec/selector").and_then(Value::as_object).is_some_and(|s| !s.is_empty());
    let external = service.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
    if !selects || external {
        return None;
    }
    let ready = slices
        .iter()
        .filter(|s| s.pointer("/metadata/labels/kubernetes.io~1service-name").and_then(Value::as_str) == Some(name))
        .flat_map(|s| s.get("endpoints").and_then(Value::as_array).into_iter().flatten())
        .any(|e| e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false));
    (!ready).then(|| format!("service {name} has no ready endpoints"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn health(object: Value) -> Health {
        assess(Some(&object)).health
    }

    #[test]
    fn deployments_progress_until_every_replica_is_updated_and_available() {
        let base = json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 3}});
        assert_eq!(health(base.clone()), Health::Progressing, "never observed");
        let mut rolling = base.clone();
        rolling["status"] = json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3});
        assert_eq!(health(rolling), Health::Progressing, "old replicas remain");
        let mut done = base.clone();
        done["status"] = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3});
        assert_eq!(health(done), Health::Healthy);
        let mut stuck = base;
        stuck["status"] = json!({"observedGeneration": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet web-1 has timed out"}]});
        let verdict = assess(Some(&stuck));
        assert_eq!(verdict.health, Health::Degraded);
        assert!(verdict.message.expect("a message").contains("timed out"));
    }

    #[test]
    fn statefulsets_and_daemonsets_wait_for_ready_pods() {
        let sts = json!({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 2}});
        assert_eq!(health(sts), Health::Progressing);
        let ds = json!({"kind": "DaemonSet", "metadata": {"generation": 1},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}});
        assert_eq!(health(ds), Health::Healthy);
    }

    #[test]
    fn jobs_and_cronjobs_report_their_last_outcome() {
        assert_eq!(health(json!({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}})), Health::Healthy);
        assert_eq!(
            health(
                json!({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}})
            ),
            Health::Degraded
        );
        assert_eq!(health(json!({"kind": "Job", "status": {"active": 1}})), Health::Progressing);
        let failed_run = json!({"kind": "CronJob", "status": {"lastScheduleTime": "2026-01-02T00:00:00Z", "lastSuccessfulTime": "2026-01-01T00:00:00Z"}});
        assert_eq!(health(failed_run), Health::Degraded);
        assert_eq!(health(json!({"kind": "CronJob", "status": {}})), Health::Healthy);
    }

    #[test]
    fn network_objects_wait_for_addresses_and_claims_for_volumes() {
        assert_eq!(health(json!({"kind": "Ingress", "status": {}})), Health::Progressing);
        assert_eq!(health(json!({"kind": "Ingress", "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}})), Health::Healthy);
        assert_eq!(health(json!({"kind": "Service", "spec": {"type": "LoadBalancer"}})), Health::Progressing);
        assert_eq!(health(json!({"kind": "Service", "spec": {"type": "ClusterIP"}})), Health::Healthy);
        assert_eq!(health(json!({"kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}})), Health::Progressing);
        assert_eq!(health(json!({"kind": "PersistentVolumeClaim", "status": {"phase": "Lost"}})), Health::Degraded);
        assert_eq!(assess(None).health, Health::Missing);
    }

    #[test]
    fn custom_resources_use_their_ready_condition() {
        assert_eq!(
            health(json!({"kind": "Database", "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Creating"}]}})),
            Health::Progressing
        );
        assert_eq!(health(json!({"kind": "Database", "status": {"conditions": [{"type": "Ready", "status": "True"}]}})), Health::Healthy);
        assert_eq!(health(json!({"kind": "ConfigMap"})), Health::Healthy);
    }

    #[test]
    fn crash_looping_and_unpullable_pods_are_named() {
        let pod = json!({"metadata": {"name": "web-1"}, "status": {"containerStatuses": [
            {"name": "web", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}]}});
        assert_eq!(pod_problem(&pod).as_deref(), Some("pod web-1 container web: ImagePullBackOff: no such image"));
        let fine = json!({"metadata": {"name": "web-2"}, "status": {"containerStatuses": [{"name": "web", "state": {"running": {}}}]}});
        assert_eq!(pod_problem(&fine), None);
    }

    #[test]
    fn services_need_a_ready_endpoint() {
        let service = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}});
        let ready = json!({"metadata": {"labels": {"kubernetes.io/service-name": "web"}}, "endpoints": [{"conditions": {"ready": true}}]});
        let unready =
            json!({"metadata": {"labels": {"kubernetes.io/service-name": "web"}}, "endpoints": [{"conditions": {"ready": false}}]});
        assert_eq!(service_without_endpoints(&service, &[&ready]), None);
        assert!(service_without_endpoints(&service, &[&unready]).is_some());
        assert!(service_without_endpoints(&service, &[]).is_some());
        assert!(Health::Degraded > Health::Missing && Health::Missing > Health::Progressing && Health::Progressing > Health::Healthy);
    }
}
