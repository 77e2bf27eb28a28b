//! Leader election over a `coordination.k8s.io/v1` Lease, so that of several
//! agent replicas exactly one applies. Taking the lease is a server-side
//! apply with the lease's resourceVersion as precondition: two replicas
//! racing for an expired lease cannot both win.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::cluster::{Cluster, ClusterError};
use crate::desired::ObjectRef;

pub const LEASE_NAME: &str = "heimdall-agent";

#[derive(Debug, Clone)]
pub struct Lease {
    pub namespace: String,
    pub identity: String,
    pub duration: Duration,
}

fn micro_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl Lease {
    fn reference(&self) -> ObjectRef {
        ObjectRef {
            api_version: "coordination.k8s.io/v1".into(),
            kind: "Lease".into(),
            namespace: self.namespace.clone(),
            name: LEASE_NAME.into(),
        }
    }

    /// Takes or renews the lease. `Ok(false)`: another replica holds it.
    pub async fn acquire(&self, cluster: &Cluster) -> Result<bool, ClusterError> {
        let reference = self.reference();
        let now = Utc::now();
        let current = cluster.get(&reference).await?;
        let mut acquire_time = micro_time(now);
        let mut resource_version = None;
        if let Some(lease) = &current {
            let holder = lease.pointer("/spec/holderIdentity").and_then(Value::as_str);
            let renewed = lease.pointer("/spec/renewTime").and_then(Value::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            let seconds = lease.pointer("/spec/leaseDurationSeconds").and_then(Value::as_i64).unwrap_or(15);
            let expired = renewed.is_none_or(|r| r.with_timezone(&Utc) + chrono::Duration::seconds(seconds) < now);
            if holder.is_some_and(|h| h != self.identity) && !expired {
                return Ok(false);
            }
            if holder == Some(self.identity.as_str())
                && let Some(acquired) = lease.pointer("/spec/acquireTime").and_then(Value::as_str)
            {
                acquire_time = acquired.to_string();
            }
            resource_version = lease.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(String::from);
        }
        let mut lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration.as_secs(),
                "acquireTime": acquire_time,
                "renewTime": micro_time(now),
            },
        });
        if let Some(version) = resource_version {
            lease["metadata"]["resourceVersion"] = json!(version);
        }
        match cluster.apply(&reference, &lease).await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
