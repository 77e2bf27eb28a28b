//! Facts about the cluster the agent reports with each heartbeat.

use serde_json::Value;

use crate::cluster::{Cluster, ClusterError};

pub use heimdall_api::agent::Facts;

pub async fn gather(cluster: &Cluster) -> Result<Facts, ClusterError> {
    let kubernetes_version = cluster.version().await?;
    let nodes = cluster.list("v1", "Node", "").await?;
    let sum = |field: &str, parse: fn(&str) -> Option<u64>| -> u64 {
        nodes.iter().filter_map(|n| n.pointer(&format!("/status/allocatable/{field}")).and_then(Value::as_str)).filter_map(parse).sum()
    };
    Ok(Facts {
        kubernetes_version,
        nodes: nodes.len(),
        cpu_millis: sum("cpu", cpu_millis),
        memory_bytes: sum("memory", bytes),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

fn split_number(text: &str) -> Option<(f64, &str)> {
    let end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    Some((text[..end].parse().ok()?, &text[end..]))
}

/// `"3500m"` -> 3500, `"4"` -> 4000.
pub fn cpu_millis(quantity: &str) -> Option<u64> {
    let (number, suffix) = split_number(quantity)?;
    let millis = match suffix {
        "m" => number,
        "" => number * 1000.0,
        "n" => number / 1_000_000.0,
        "u" => number / 1000.0,
        _ => return None,
    };
    Some(millis.round() as u64)
}

/// `"16Gi"` -> 17179869184, `"500M"` -> 500000000.
pub fn bytes(quantity: &str) -> Option<u64> {
    let (number, suffix) = split_number(quantity)?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse() {
        assert_eq!(cpu_millis("3500m"), Some(3500));
        assert_eq!(cpu_millis("4"), Some(4000));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(bytes("16Gi"), Some(17_179_869_184));
        assert_eq!(bytes("500M"), Some(500_000_000));
        assert_eq!(bytes("12Qi"), None);
        assert_eq!(cpu_millis("lots"), None);
    }
}
