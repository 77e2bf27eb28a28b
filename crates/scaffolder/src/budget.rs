//! What one template run may use, so that no template or value makes the
//! hub hold more than a few megabytes: each limit is named in the refusal.

/// Steps of one template.
pub const MAX_STEPS: usize = 100;
/// Bytes of the values a run is given (as JSON).
pub const MAX_PARAMETER_BYTES: usize = 256 * 1024;
/// Bytes one evaluated input, `if` or output may be (as JSON).
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// Bytes one rendered file or file name may be.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Bytes and files of the whole workspace.
pub const MAX_WORKSPACE_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_WORKSPACE_FILES: usize = 2000;
/// Lines and bytes of one run's log; one line is cut at [`MAX_LOG_LINE_BYTES`].
pub const MAX_LOG_LINES: usize = 1000;
pub const MAX_LOG_BYTES: usize = 256 * 1024;
pub const MAX_LOG_LINE_BYTES: usize = 4096;

/// `what is N bytes; at most M`.
pub fn too_large(what: &str, size: usize, limit: usize) -> String {
    format!("{what} is {size} bytes; at most {limit} bytes are allowed")
}

/// About the size of a value as JSON (strings unescaped), without writing it.
pub fn json_size(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 20,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => items.iter().map(|item| json_size(item) + 1).sum::<usize>() + 2,
        Value::Object(map) => map.iter().map(|(key, item)| key.len() + 4 + json_size(item)).sum::<usize>() + 2,
    }
}

/// The log of a run, within its budget: once full, one line says so and the rest is dropped.
pub(crate) struct LogBudget {
    lines: usize,
    bytes: usize,
    full: bool,
}

impl LogBudget {
    pub fn new() -> LogBudget {
        LogBudget { lines: 0, bytes: 0, full: false }
    }

    /// The message to log, cut to its budget, or `None` once the log is full.
    pub fn admit(&mut self, message: String) -> Option<String> {
        if self.full {
            return None;
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut cut = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" … (line cut)");
        }
        self.lines += 1;
        self.bytes += message.len();
        if self.lines >= MAX_LOG_LINES || self.bytes > MAX_LOG_BYTES {
            self.full = true;
            return Some(format!("log truncated: a run logs at most {MAX_LOG_LINES} lines and {MAX_LOG_BYTES} bytes"));
        }
        Some(message)
    }
}
