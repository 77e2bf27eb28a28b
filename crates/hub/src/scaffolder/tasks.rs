//! Scaffolder tasks as Backstage serves them: a task has a spec (template
//! and values), a status (`open` → `processing` → `completed`|`failed`)
//! and a list of events (`log` lines, then one `completion`). Readers
//! follow a task by the index of the last event they saw; a watch channel
//! wakes them when any task moves.
//!
//! Tasks live in the memory of the replica that runs them: a task is
//! minutes of work whose lasting results (the repository, the catalog
//! location, the Application) are stored elsewhere. The newest
//! [`MAX_TASKS`] are kept.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use serde::Serialize;
use serde_json::{Value, json};

/// Finished tasks beyond this many are forgotten, oldest first.
pub const MAX_TASKS: usize = 1000;
/// A task's log keeps at most this many events (a template that logs in a loop cannot eat the hub).
pub const MAX_EVENTS: usize = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskStatus {
    Open,
    Processing,
    Completed,
    Failed,
}

impl TaskStatus {
    pub fn is_done(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

/// One event of a task, in Backstage's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvent {
    pub id: usize,
    pub task_id: String,
    /// `log` or `completion`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub body: Value,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub spec: Value,
    pub status: TaskStatus,
    pub created_at: String,
    pub last_heartbeat_at: String,
    pub created_by: String,
    #[serde(skip)]
    pub events: Vec<TaskEvent>,
    /// The template's `output` once completed.
    #[serde(skip)]
    pub output: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Tasks {
    tasks: Arc<Mutex<VecDeque<Task>>>,
    moved: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks { tasks: Arc::default(), moved: Arc::new(tokio::sync::watch::channel(0).0) }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Tasks {
    fn with<T>(&self, f: impl FnOnce(&mut VecDeque<Task>) -> T) -> T {
        let mut tasks = self.tasks.lock();
        f(&mut tasks)
    }

    fn with_task(&self, id: &str, f: impl FnOnce(&mut Task)) {
        self.with(|tasks| {
            if let Some(task) = tasks.iter_mut().find(|t| t.id == id) {
                f(task);
            }
        });
        self.moved.send_modify(|n| *n += 1);
    }

    /// Records a new open task; returns its id.
    pub fn create(&self, spec: Value, created_by: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let at = now();
        let task = Task {
            id: id.clone(),
            spec,
            status: TaskStatus::Open,
            created_at: at.clone(),
            last_heartbeat_at: at,
            created_by: created_by.to_string(),
            events: Vec::new(),
            output: None,
        };
        self.with(|tasks| {
            tasks.push_front(task);
            while tasks.len() > MAX_TASKS {
                // Forget the oldest finished task; running ones are never dropped.
                match tasks.iter().rposition(|t| t.status.is_done()) {
                    Some(i) => {
                        tasks.remove(i);
                    }
                    None => break,
                }
            }
        });
        id
    }

    pub fn get(&self, id: &str) -> Option<Task> {
        self.with(|tasks| tasks.iter().find(|t| t.id == id).cloned())
    }

    /// Tasks, newest first, that `filter` keeps.
    pub fn list(&self, filter: impl Fn(&Task) -> bool) -> Vec<Task> {
        self.with(|tasks| tasks.iter().filter(|t| filter(t)).cloned().collect())
    }

    pub fn start(&self, id: &str) {
        self.with_task(id, |task| {
            task.status = TaskStatus::Processing;
            task.last_heartbeat_at = now();
        });
    }

    pub fn log(&self, id: &str, step: Option<&str>, message: &str) {
        self.with_task(id, |task| {
            if task.events.len() >= MAX_EVENTS {
                return;
            }
            let message = if task.events.len() + 1 == MAX_EVENTS { "log truncated: too many lines" } else { message };
            let mut body = json!({"message": message});
            if let Some(step) = step {
                body["stepId"] = json!(step);
            }
            let at = now();
            task.events.push(TaskEvent { id: task.events.len(), task_id: task.id.clone(), type_: "log", body, created_at: at.clone() });
            task.last_heartbeat_at = at;
        });
    }

    /// Ends a task: `Ok(output)` completes it, `Err(message)` fails it.
    pub fn finish(&self, id: &str, result: Result<Value, String>) {
        self.with_task(id, |task| {
            let at = now();
            let body = match &result {
                Ok(output) => json!({"message": "Run completed with status: completed", "status": "completed", "output": output}),
                Err(message) => json!({"message": format!("Run completed with status: failed: {message}"), "status": "failed", "error": {"message": message}}),
            };
            task.status = if result.is_ok() { TaskStatus::Completed } else { TaskStatus::Failed };
            task.output = result.ok();
            task.events.push(TaskEvent { id: task.events.len(), task_id: task.id.clone(), type_: "completion", body, created_at: at.clone() });
            task.last_heartbeat_at = at;
        });
    }

    /// Events after `after` (all with `None`), and whether the task is done.
    pub fn events(&self, id: &str, after: Option<usize>) -> Option<(Vec<TaskEvent>, bool)> {
        self.with(|tasks| {
            let task = tasks.iter().find(|t| t.id == id)?;
            let from = after.map_or(0, |a| a + 1);
            Some((task.events.iter().skip(from).cloned().collect(), task.status.is_done()))
        })
    }

    /// A receiver that changes whenever any task moves.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.moved.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_moves_from_open_to_completed_with_its_events_in_order() {
        let tasks = Tasks::default();
        let id = tasks.create(json!({"templateRef": "template:default/x"}), "alice");
        assert_eq!(tasks.get(&id).expect("task").status, TaskStatus::Open);
        tasks.start(&id);
        tasks.log(&id, Some("fetch"), "fetching");
        tasks.log(&id, None, "done fetching");
        tasks.finish(&id, Ok(json!({"links": []})));
        let task = tasks.get(&id).expect("task");
        assert_eq!(task.status, TaskStatus::Completed);
        let (events, done) = tasks.events(&id, None).expect("events");
        assert!(done);
        assert_eq!(events.iter().map(|e| e.type_).collect::<Vec<_>>(), ["log", "log", "completion"]);
        assert_eq!(events[0].body["stepId"], "fetch");
        let (later, _) = tasks.events(&id, Some(0)).expect("events");
        assert_eq!(later.len(), 2, "after event 0 come 1 and 2");
        assert_eq!(tasks.events("nope", None), None);
    }

    #[test]
    fn old_finished_tasks_are_forgotten_but_running_ones_are_kept() {
        let tasks = Tasks::default();
        let running = tasks.create(json!({}), "alice");
        tasks.start(&running);
        for _ in 0..MAX_TASKS + 5 {
            let id = tasks.create(json!({}), "bob");
            tasks.finish(&id, Err("boom".into()));
        }
        assert_eq!(tasks.list(|_| true).len(), MAX_TASKS);
        assert!(tasks.get(&running).is_some());
    }

    #[test]
    fn a_runaway_log_is_cut() {
        let tasks = Tasks::default();
        let id = tasks.create(json!({}), "alice");
        for i in 0..MAX_EVENTS + 10 {
            tasks.log(&id, None, &format!("line {i}"));
        }
        tasks.finish(&id, Ok(json!({})));
        let (events, _) = tasks.events(&id, None).expect("events");
        assert_eq!(events.len(), MAX_EVENTS + 1);
        assert_eq!(events[MAX_EVENTS - 1].body["message"], "log truncated: too many lines");
        assert_eq!(events[MAX_EVENTS].type_, "completion");
    }
}
