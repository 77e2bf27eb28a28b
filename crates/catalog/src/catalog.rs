//! The catalog in memory: entities by reference, each owned by the source
//! (a location) it came from, with relations in both directions. Replacing
//! a source's entities is one step: what it no longer has becomes an
//! orphan (flagged, removed by [`Catalog::remove_orphans`]), and an entity
//! another source already owns is refused, as Backstage does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::entity::{Entity, Relation};
use crate::reference::EntityRef;
use crate::relations::{Edge, edges};

/// Backstage's annotation on an entity whose source no longer has it.
pub const ORPHAN_ANNOTATION: &str = "backstage.io/orphan";

#[derive(Debug, Clone)]
struct Stored {
    entity: Entity,
    source: String,
    edges: Vec<Edge>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    entities: BTreeMap<EntityRef, Stored>,
    /// target -> (inverse relation, source entity) of every edge pointing at it.
    incoming: HashMap<EntityRef, BTreeSet<(&'static str, EntityRef)>>,
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

    fn link(&mut self, edges: &[Edge]) {
        for edge in edges {
            self.incoming.entry(edge.target.clone()).or_default().insert((edge.inverse, edge.source.clone()));
        }
    }

    fn unlink(&mut self, edges: &[Edge]) {
        for edge in edges {
            if let Some(set) = self.incoming.get_mut(&edge.target) {
                set.remove(&(edge.inverse, edge.source.clone()));
                if set.is_empty() {
                    self.incoming.remove(&edge.target);
                }
            }
        }
    }

    fn put(&mut self, entity: Entity, source: &str) {
        let reference = entity.entity_ref();
        if let Some(previous) = self.entities.remove(&reference) {
            self.unlink(&previous.edges);
        }
        let edges = edges(&entity);
        self.link(&edges);
        self.entities.insert(reference, Stored { entity, source: source.to_string(), edges });
    }

    fn remove(&mut self, reference: &EntityRef) -> Option<Entity> {
        let stored = self.entities.remove(reference)?;
        self.unlink(&stored.edges);
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
            match self.entities.get(&reference) {
                Some(stored) if stored.source != source && !is_orphan(&stored.entity) => {
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
            .entities
            .iter()
            .filter(|(r, s)| s.source == source && !seen.contains(*r) && !is_orphan(&s.entity))
            .map(|(r, _)| r.clone())
            .collect();
        for reference in gone {
            if let Some(stored) = self.entities.get_mut(&reference) {
                stored.entity.metadata.annotations.insert(ORPHAN_ANNOTATION.into(), "true".into());
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
        let owned: Vec<EntityRef> = self.entities.iter().filter(|(_, s)| s.source == source).map(|(r, _)| r.clone()).collect();
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
}

fn is_orphan(entity: &Entity) -> bool {
    entity.metadata.annotations.get(ORPHAN_ANNOTATION).is_some_and(|v| v == "true")
}
