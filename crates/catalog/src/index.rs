//! The catalog's inverted index: for every field path, each value
//! (lowercase) with the ids of the entities that have it, and a text column
//! for full-text search. A filter is then set operations on sorted id lists
//! instead of a walk over every entity's fields, and a facet is a count per
//! value of the ids that matched.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::query::{DEFAULT_TEXT_FIELDS, FacetCount, Fields, Filter};
use crate::reference::EntityRef;

/// Ids of one value: the first spelling seen (for facets) and the entities.
#[derive(Debug, Default)]
struct Postings {
    spelling: String,
    ids: BTreeSet<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    /// id -> entity (None for a freed id).
    refs: Vec<Option<EntityRef>>,
    free: Vec<u32>,
    /// path -> lowercase value -> postings.
    values: HashMap<String, HashMap<String, Postings>>,
    /// path -> ids that have the path at all.
    present: HashMap<String, BTreeSet<u32>>,
    /// id -> lowercase name, title, description, tags and owner, for full-text search.
    text: Vec<String>,
    /// id -> lowercase `metadata.name`, the usual sort key.
    names: Vec<String>,
}

fn text_of(fields: &Fields) -> String {
    let mut text = String::new();
    for path in DEFAULT_TEXT_FIELDS {
        for value in fields.values(path).into_iter().flatten() {
            text.push_str(&value.to_ascii_lowercase());
            text.push('\n');
        }
    }
    text
}

fn name_of(fields: &Fields) -> String {
    fields.first("metadata.name").unwrap_or_default().to_ascii_lowercase()
}

/// The ids in both sorted lists.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

impl Index {
    pub fn insert(&mut self, reference: &EntityRef, fields: &Fields) -> u32 {
        let id = match self.free.pop() {
            Some(id) => {
                self.refs[id as usize] = Some(reference.clone());
                self.text[id as usize] = text_of(fields);
                self.names[id as usize] = name_of(fields);
                id
            }
            None => {
                self.refs.push(Some(reference.clone()));
                self.text.push(text_of(fields));
                self.names.push(name_of(fields));
                (self.refs.len() - 1) as u32
            }
        };
        for (path, values) in fields.iter() {
            for value in values {
                self.add(id, path, value);
            }
        }
        id
    }

    pub fn remove(&mut self, id: u32, fields: &Fields) {
        for (path, values) in fields.iter() {
            for value in values {
                self.remove_value(id, path, value);
            }
            if let Some(ids) = self.present.get_mut(path.as_str()) {
                ids.remove(&id);
            }
        }
        self.refs[id as usize] = None;
        self.text[id as usize].clear();
        self.names[id as usize].clear();
        self.free.push(id);
    }

    pub fn add(&mut self, id: u32, path: &str, value: &str) {
        let postings = self.values.entry(path.to_string()).or_default().entry(value.to_ascii_lowercase()).or_default();
        if postings.spelling.is_empty() {
            postings.spelling = value.to_string();
        }
        postings.ids.insert(id);
        self.present.entry(path.to_string()).or_default().insert(id);
    }

    /// Removes `id` from a value's postings. (`present` is the caller's: the
    /// entity may still have other values at the path.)
    pub fn remove_value(&mut self, id: u32, path: &str, value: &str) {
        if let Some(by_value) = self.values.get_mut(path) {
            let key = value.to_ascii_lowercase();
            if let Some(postings) = by_value.get_mut(&key) {
                postings.ids.remove(&id);
                if postings.ids.is_empty() {
                    by_value.remove(&key);
                }
            }
        }
    }

    /// After a relation was removed: whether the entity still has the path.
    pub fn refresh_present(&mut self, id: u32, path: &str, fields: &Fields) {
        if fields.values(path).is_none()
            && let Some(ids) = self.present.get_mut(path)
        {
            ids.remove(&id);
        }
    }

    fn all(&self) -> Vec<u32> {
        self.refs.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(i, _)| i as u32).collect()
    }

    /// The ids the filter matches, sorted.
    pub fn filter(&self, filter: &Filter) -> Vec<u32> {
        if filter.sets.is_empty() {
            return self.all();
        }
        let mut matched: BTreeSet<u32> = BTreeSet::new();
        for set in &filter.sets {
            let mut ids: Option<Vec<u32>> = None;
            for condition in set {
                let found: Vec<u32> = match &condition.values {
                    None => self.present.get(&condition.key).map(|ids| ids.iter().copied().collect()).unwrap_or_default(),
                    Some(values) => {
                        let by_value = self.values.get(&condition.key);
                        let mut found: Vec<u32> =
                            values.iter().filter_map(|v| by_value?.get(v)).flat_map(|p| p.ids.iter().copied()).collect();
                        found.sort_unstable();
                        found.dedup();
                        found
                    }
                };
                ids = Some(match ids {
                    None => found,
                    Some(so_far) => intersect(&so_far, &found),
                });
                if ids.as_ref().is_some_and(Vec::is_empty) {
                    break;
                }
            }
            matched.extend(ids.unwrap_or_default());
        }
        matched.into_iter().collect()
    }

    /// Keeps the ids whose name, title, description, tags or owner contain `term` (lowercase).
    pub fn search(&self, ids: Vec<u32>, term: &str) -> Vec<u32> {
        ids.into_iter().filter(|id| self.text[*id as usize].contains(term)).collect()
    }

    /// The lowercase name of an entity, when `path` is `metadata.name` (the column kept for ordering).
    pub fn sort_column(&self, path: &str, id: u32) -> Option<Option<&str>> {
        (path == "metadata.name").then(|| self.names.get(id as usize).map(String::as_str))
    }

    pub fn reference(&self, id: u32) -> Option<&EntityRef> {
        self.refs.get(id as usize)?.as_ref()
    }

    /// Counts each value of each facet among `ids`, most frequent first.
    pub fn facets(&self, ids: &[u32], facet_paths: &[String]) -> BTreeMap<String, Vec<FacetCount>> {
        let mut member = vec![false; self.refs.len()];
        for id in ids {
            member[*id as usize] = true;
        }
        facet_paths
            .iter()
            .map(|facet| {
                let mut counts: Vec<FacetCount> = self
                    .values
                    .get(&facet.to_lowercase())
                    .into_iter()
                    .flatten()
                    .map(|(_, postings)| FacetCount {
                        value: postings.spelling.clone(),
                        count: if ids.len() == self.refs.len() - self.free.len() {
                            postings.ids.len()
                        } else {
                            postings.ids.iter().filter(|id| member[**id as usize]).count()
                        },
                    })
                    .filter(|f| f.count > 0)
                    .collect();
                counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
                (facet.clone(), counts)
            })
            .collect()
    }
}
