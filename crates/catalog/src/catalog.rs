//! The catalog in memory: entities by reference, each owned by the source
//! (a location) it came from, with relations in both directions. Replacing
//! a source's entities is one step: what it no longer has becomes an
//! orphan (flagged, removed by [`Catalog::remove_orphans`]), and an entity
//! another source already owns is refused, as Backstage does.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::entity::{Entity, Relation};
use crate::index::Index;
use crate::query::{DEFAULT_TEXT_FIELDS, FacetCount, Fields, Filter, Order, relation_path};
use crate::reference::EntityRef;
use crate::relations::{Edge, edges};

/// Backstage's annotation on an entity whose source no longer has it.
pub const ORPHAN_ANNOTATION: &str = "backstage.io/orphan";
/// Sources whose entities are made from something else (a Heimdall
/// Application, say): an entity a person wrote in a catalog file replaces
/// one of these, never the other way round.
pub const GENERATED_SOURCE_PREFIX: &str = "generated:";

#[derive(Debug, Clone)]
struct Stored {
    entity: Entity,
    source: String,
    edges: Vec<Edge>,
    /// The entity flattened for queries, with its relations.
    fields: Fields,
    /// Its id in the index.
    id: u32,
}

/// A query of the catalog: what matches, in which order, which page.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Filter,
    /// A lowercase term and the fields to look for it in.
    pub text: Option<(String, Vec<String>)>,
    pub order: Vec<Order>,
    pub offset: usize,
    pub limit: Option<usize>,
}

/// One page of a query's result, and how many matched in all.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Entity>,
    pub total: usize,
}

#[derive(Debug, Default)]
pub struct Catalog {
    entities: BTreeMap<EntityRef, Stored>,
    /// target -> (inverse relation, source entity) of every edge pointing at it.
    incoming: HashMap<EntityRef, BTreeSet<(&'static str, EntityRef)>>,
    /// source -> the entities it provides.
    by_source: HashMap<String, BTreeSet<EntityRef>>,
    index: Index,
    by_uid: HashMap<String, EntityRef>,
}

/// A stable uid for an entity (Backstage's `metadata.uid`): a UUID-shaped
/// digest of its reference, so every replica gives the same one.
pub fn uid_of(reference: &EntityRef) -> String {
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(reference.to_string().as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

/// Sets Backstage's `metadata.uid` and `metadata.etag` (which changes whenever the entity does).
fn stamp(entity: &mut Entity, reference: &EntityRef) {
    use sha2::Digest;
    entity.metadata.uid = Some(uid_of(reference));
    entity.metadata.etag = None;
    let bytes = serde_json::to_vec(&*entity).unwrap_or_default();
    entity.metadata.etag = Some(sha2::Sha256::digest(&bytes).iter().take(12).map(|b| format!("{b:02x}")).collect());
}

/// What replacing a source's entities did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SourceChange {
    pub added: Vec<EntityRef>,
    pub updated: Vec<EntityRef>,
    pub unchanged: usize,
    /// Entities the source no longer has, now flagged as orphans.
    pub orphaned: Vec<EntityRef>,
    /// Entities refused because another source owns them: (entity, its source).
    pub conflicts: Vec<(EntityRef, String)>,
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Records edges stated by an entity: the inverse on each target (and
    /// in its query fields, so relation filters cost what other filters do).
    fn link(&mut self, edges: &[Edge]) {
        for edge in edges {
            if self.incoming.entry(edge.target.clone()).or_default().insert((edge.inverse, edge.source.clone()))
                && let Some(target) = self.entities.get_mut(&edge.target)
            {
                target.fields.add_relation(edge.inverse, edge.source.to_string());
                self.index.add(target.id, &relation_path(edge.inverse), &edge.source.to_string());
            }
        }
    }

    fn unlink(&mut self, edges: &[Edge]) {
        for edge in edges {
            if let Some(set) = self.incoming.get_mut(&edge.target) {
                if set.remove(&(edge.inverse, edge.source.clone()))
                    && let Some(target) = self.entities.get_mut(&edge.target)
                {
                    let (path, source) = (relation_path(edge.inverse), edge.source.to_string());
                    target.fields.remove_relation(edge.inverse, &source);
                    self.index.remove_value(target.id, &path, &source);
                    self.index.refresh_present(target.id, &path, &target.fields);
                }
                if set.is_empty() {
                    self.incoming.remove(&edge.target);
                }
            }
        }
    }

    /// An entity's query fields: its own, the relations it states and those stated about it.
    fn fields_of(&self, reference: &EntityRef, entity: &Entity, edges: &[Edge]) -> Fields {
        let mut fields = Fields::of(entity);
        for edge in edges {
            fields.add_relation(edge.relation, edge.target.to_string());
        }
        for (inverse, from) in self.incoming.get(reference).into_iter().flatten() {
            fields.add_relation(inverse, from.to_string());
        }
        fields
    }

    fn put(&mut self, entity: Entity, source: &str) {
        let reference = entity.entity_ref();
        self.remove(&reference);
        // `replace_source` stamped uid and etag.
        self.by_uid.insert(uid_of(&reference), reference.clone());
        let edges = edges(&entity);
        let fields = self.fields_of(&reference, &entity, &edges);
        self.by_source.entry(source.to_string()).or_default().insert(reference.clone());
        let id = self.index.insert(&reference, &fields);
        self.entities.insert(reference, Stored { entity, source: source.to_string(), edges: edges.clone(), fields, id });
        self.link(&edges);
    }

    fn remove(&mut self, reference: &EntityRef) -> Option<Entity> {
        let stored = self.entities.remove(reference)?;
        self.by_uid.remove(&uid_of(reference));
        self.index.remove(stored.id, &stored.fields);
        self.unlink(&stored.edges);
        if let Some(owned) = self.by_source.get_mut(&stored.source) {
            owned.remove(reference);
            if owned.is_empty() {
                self.by_source.remove(&stored.source);
            }
        }
        Some(stored.entity)
    }

    /// Makes `entities` what `source` provides: new ones are added, changed
    /// ones replaced, missing ones flagged as orphans.
    pub fn replace_source(&mut self, source: &str, entities: Vec<Entity>) -> SourceChange {
        let mut change = SourceChange::default();
        let mut seen = BTreeSet::new();
        for mut entity in entities {
            let reference = entity.entity_ref();
            entity.relations.clear();
            stamp(&mut entity, &reference);
            match self.entities.get(&reference) {
                Some(stored)
                    if stored.source != source
                        && !is_orphan(&stored.entity)
                        && (source.starts_with(GENERATED_SOURCE_PREFIX) || !stored.source.starts_with(GENERATED_SOURCE_PREFIX)) =>
                {
                    change.conflicts.push((reference, stored.source.clone()));
                    continue;
                }
                Some(stored) if stored.entity == entity => change.unchanged += 1,
                Some(_) => change.updated.push(reference.clone()),
                None => change.added.push(reference.clone()),
            }
            seen.insert(reference);
            self.put(entity, source);
        }
        let gone: Vec<EntityRef> = self
            .by_source
            .get(source)
            .into_iter()
            .flatten()
            .filter(|r| !seen.contains(*r) && self.entities.get(*r).is_some_and(|s| !is_orphan(&s.entity)))
            .cloned()
            .collect();
        for reference in gone {
            if let Some(stored) = self.entities.get(&reference) {
                let mut entity = stored.entity.clone();
                entity.metadata.annotations.insert(ORPHAN_ANNOTATION.into(), "true".into());
                stamp(&mut entity, &reference);
                let fields = self.fields_of(&reference, &entity, &stored.edges);
                self.index.remove(stored.id, &stored.fields);
                let id = self.index.insert(&reference, &fields);
                if let Some(stored) = self.entities.get_mut(&reference) {
                    stored.entity = entity;
                    stored.fields = fields;
                    stored.id = id;
                }
            }
            change.orphaned.push(reference);
        }
        change
    }

    /// Removes every orphan; returns them.
    pub fn remove_orphans(&mut self) -> Vec<EntityRef> {
        let orphans: Vec<EntityRef> = self.entities.iter().filter(|(_, s)| is_orphan(&s.entity)).map(|(r, _)| r.clone()).collect();
        for reference in &orphans {
            self.remove(reference);
        }
        orphans
    }

    /// Removes everything a source provided (its location was deleted).
    pub fn remove_source(&mut self, source: &str) -> Vec<EntityRef> {
        let owned: Vec<EntityRef> = self.by_source.get(source).into_iter().flatten().cloned().collect();
        for reference in &owned {
            self.remove(reference);
        }
        owned
    }

    /// The entity with its relations, both those it states and those others state about it.
    pub fn get(&self, reference: &EntityRef) -> Option<Entity> {
        let stored = self.entities.get(reference)?;
        let mut entity = stored.entity.clone();
        entity.relations = self.relations(reference);
        Some(entity)
    }

    /// The reference of the entity with this uid.
    pub fn by_uid(&self, uid: &str) -> Option<&EntityRef> {
        self.by_uid.get(uid)
    }

    /// Removes one entity (Backstage's delete by uid); its source brings it
    /// back on the next read if it still has it. Returns its reference.
    pub fn remove_entity(&mut self, uid: &str) -> Option<EntityRef> {
        let reference = self.by_uid.get(uid)?.clone();
        self.remove(&reference).map(|_| reference)
    }

    /// The source an entity came from.
    pub fn source_of(&self, reference: &EntityRef) -> Option<&str> {
        self.entities.get(reference).map(|s| s.source.as_str())
    }

    pub fn relations(&self, reference: &EntityRef) -> Vec<Relation> {
        let mut relations: BTreeSet<Relation> = BTreeSet::new();
        if let Some(stored) = self.entities.get(reference) {
            relations.extend(stored.edges.iter().map(|e| Relation { type_: e.relation.to_string(), target_ref: e.target.to_string() }));
        }
        for (inverse, source) in self.incoming.get(reference).into_iter().flatten() {
            relations.insert(Relation { type_: inverse.to_string(), target_ref: source.to_string() });
        }
        relations.into_iter().collect()
    }

    pub fn references(&self) -> impl Iterator<Item = &EntityRef> {
        self.entities.keys()
    }

    /// The ids of every entity the filter and text match.
    fn matching(&self, filter: &Filter, text: Option<&(String, Vec<String>)>) -> Vec<u32> {
        let ids = self.index.filter(filter);
        match text {
            None => ids,
            // The usual fields have a text column; others are read from each match.
            Some((term, paths)) if paths.iter().map(String::as_str).eq(DEFAULT_TEXT_FIELDS.iter().copied()) => self.index.search(ids, term),
            Some((term, paths)) => ids.into_iter().filter(|id| self.fields(*id).is_some_and(|f| f.contains_text(term, paths))).collect(),
        }
    }

    fn fields(&self, id: u32) -> Option<&Fields> {
        Some(&self.entities.get(self.index.reference(id)?)?.fields)
    }

    /// Runs a query: the page of entities (with relations) and the total.
    pub fn query(&self, query: &Query) -> Page {
        let ids = self.matching(&query.filter, query.text.as_ref());
        let total = ids.len();
        // Sort keys are computed once per match; `metadata.name` comes from its column.
        let key = |id: u32| -> Vec<Option<Cow<'_, str>>> {
            query
                .order
                .iter()
                .map(|o| match self.index.sort_column(&o.field, id) {
                    Some(column) => column.filter(|s| !s.is_empty()).map(Cow::Borrowed),
                    None => self.fields(id).and_then(|f| f.first(&o.field)).map(|v| Cow::Owned(v.to_ascii_lowercase())),
                })
                .collect()
        };
        let mut keyed: Vec<(Vec<Option<Cow<'_, str>>>, &EntityRef)> = ids
            .into_iter()
            .filter_map(|id| Some((if query.order.is_empty() { Vec::new() } else { key(id) }, self.index.reference(id)?)))
            .collect();
        let compare = |(a, ra): &(Vec<Option<Cow<'_, str>>>, &EntityRef), (b, rb): &(Vec<Option<Cow<'_, str>>>, &EntityRef)| {
            for ((x, y), order) in a.iter().zip(b).zip(&query.order) {
                // Entities without the field come last, whatever the direction.
                let ordering = match (x, y) {
                    (Some(x), Some(y)) if order.descending => y.cmp(x),
                    (Some(x), Some(y)) => x.cmp(y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                };
                if ordering != std::cmp::Ordering::Equal {
                    return ordering;
                }
            }
            ra.cmp(rb)
        };
        // Only the requested page needs to be in order.
        let wanted = query.limit.map_or(keyed.len(), |limit| query.offset.saturating_add(limit).min(keyed.len()));
        if wanted > 0 && wanted < keyed.len() {
            keyed.select_nth_unstable_by(wanted - 1, compare);
            keyed.truncate(wanted);
        }
        keyed.sort_by(compare);
        let items = keyed.into_iter().skip(query.offset).filter_map(|(_, reference)| self.get(reference)).collect();
        Page { items, total }
    }

    /// Counts the values of each facet over the entities the filter matches.
    pub fn facets(&self, filter: &Filter, facet_paths: &[String]) -> BTreeMap<String, Vec<FacetCount>> {
        self.index.facets(&self.index.filter(filter), facet_paths)
    }
}

fn is_orphan(entity: &Entity) -> bool {
    entity.metadata.annotations.get(ORPHAN_ANNOTATION).is_some_and(|v| v == "true")
}
