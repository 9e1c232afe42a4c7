//! Where each key and value of a YAML document starts, so that errors found after
//! deserialisation (an invalid bucket name, a bad policy) can still point at `file:line:column`.
//!
//! The index is built by the same parser that reads the spec (serde-saphyr): the document is
//! read a second time into a tree of [`Spanned`] nodes that keeps only positions, then
//! flattened into paths. It knows nothing about the spec's meaning: paths are plain lists
//! of mapping keys and sequence indices.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    fn of<T>(node: &Spanned<T>) -> Position {
        let location = node.referenced;
        Position {
            line: usize::try_from(location.line())
                .unwrap_or(usize::MAX)
                .max(1),
            column: usize::try_from(location.column())
                .unwrap_or(usize::MAX)
                .max(1),
        }
    }
}

/// The start of a mapping entry's key and of its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Position,
    pub value: Position,
}

/// Positions of every node in a YAML document, by path.
#[derive(Debug, Default)]
pub struct SourceIndex {
    entries: HashMap<Vec<String>, Entry>,
}

impl SourceIndex {
    /// Indexes `text`. A document that does not parse gives an empty index: the spec's own
    /// parse reports the syntax error, with its position.
    pub fn build(text: &str) -> SourceIndex {
        let mut index = SourceIndex::default();
        if let Ok(root) =
            serde_saphyr::from_str_with_options::<Spanned<Node>>(text, super::yaml_options())
        {
            index.add(&mut Vec::new(), &root.value);
        }
        index
    }

    fn add(&mut self, path: &mut Vec<String>, node: &Node) {
        let children: Box<dyn Iterator<Item = (String, Entry, &Node)>> = match node {
            Node::Other => return,
            Node::Sequence(items) => Box::new(items.iter().enumerate().map(|(i, item)| {
                let at = Position::of(item);
                (i.to_string(), Entry { key: at, value: at }, &item.value)
            })),
            Node::Mapping(entries) => Box::new(entries.iter().map(|(key, value)| {
                let entry = Entry {
                    key: Position::of(key),
                    value: Position::of(value),
                };
                (key.value.0.clone(), entry, &value.value)
            })),
        };
        for (name, entry, child) in children {
            path.push(name);
            self.entries.insert(path.clone(), entry);
            self.add(path, child);
            path.pop();
        }
    }

    /// The position of the key at `path` (the sequence index for a sequence item), or of the
    /// nearest ancestor that has one.
    pub fn key(&self, path: &[&str]) -> Option<Position> {
        self.find(path).map(|entry| entry.key)
    }

    /// The position of the value at `path`, or of the nearest ancestor that has one.
    pub fn value(&self, path: &[&str]) -> Option<Position> {
        self.find(path).map(|entry| entry.value)
    }

    /// The path of the node a parser error at `at` is about, as `buckets.data`: the mapping
    /// that holds the key at `at` (an unknown or missing field), or the node whose value
    /// starts at `at` (a value of the wrong type). `None` at the top level.
    pub fn path_at(&self, at: Position) -> Option<String> {
        let by_value = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.value == at)
            .map(|(path, _)| path.as_slice())
            .max_by_key(|path| path.len());
        let by_key = || {
            self.entries
                .iter()
                .find(|(_, entry)| entry.key == at)
                .map(|(path, _)| &path[..path.len() - 1])
        };
        let path = by_value.or_else(by_key)?;
        (!path.is_empty()).then(|| path.join("."))
    }

    fn find(&self, path: &[&str]) -> Option<&Entry> {
        (1..=path.len()).rev().find_map(|len| {
            let key: Vec<String> = path[..len].iter().map(|s| s.to_string()).collect();
            self.entries.get(&key)
        })
    }
}

/// A YAML node reduced to its shape: the positions of what it contains.
enum Node {
    /// A scalar, or anything else without children.
    Other,
    Sequence(Vec<Spanned<Node>>),
    Mapping(Vec<(Spanned<Key>, Spanned<Node>)>),
}

/// A mapping key as text; a complex key (a sequence or mapping), which the spec never uses,
/// is `?` and its contents are not indexed.
struct Key(String);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Key, E> {
        Ok(Key(text.to_string()))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Key, E> {
        Ok(Key(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Key, E> {
        Ok(Key(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Key, E> {
        Ok(Key(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Key, E> {
        Ok(Key(value.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key("~".to_string()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Key, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Key, A::Error> {
        while items.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Key("?".to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Key, A::Error> {
        while entries.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Key("?".to_string()))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Node, D::Error> {
        Node::deserialize(inner)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Node, A::Error> {
        let mut nodes = Vec::new();
        while let Some(item) = items.next_element()? {
            nodes.push(item);
        }
        Ok(Node::Sequence(nodes))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Node, A::Error> {
        let mut nodes = Vec::new();
        while let Some(key) = entries.next_key()? {
            nodes.push((key, entries.next_value()?));
        }
        Ok(Node::Mapping(nodes))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn indexes_keys_and_values_of_nested_block_and_flow_nodes() {
        let text = "project: lab\nbuckets:\n  data:\n    tags: {team: ds}\n    policy:\n      Statement:\n        - Effect: Allow\n";
        let index = SourceIndex::build(text);
        assert_eq!(index.key(&["project"]), Some(pos(1, 1)));
        assert_eq!(index.value(&["project"]), Some(pos(1, 10)));
        assert_eq!(index.key(&["buckets", "data"]), Some(pos(3, 3)));
        assert_eq!(
            index.key(&["buckets", "data", "tags", "team"]),
            Some(pos(4, 12))
        );
        assert_eq!(
            index.value(&["buckets", "data", "tags", "team"]),
            Some(pos(4, 18))
        );
        assert_eq!(
            index.key(&["buckets", "data", "policy", "Statement", "0", "Effect"]),
            Some(pos(7, 11))
        );
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let index = SourceIndex::build("buckets:\n  data: {}\n");
        assert_eq!(index.key(&["buckets", "data", "nope"]), Some(pos(2, 3)));
        assert_eq!(index.key(&["elsewhere"]), None);
    }

    #[test]
    fn complex_keys_are_skipped_without_losing_the_rest() {
        let index = SourceIndex::build("? [a, b]\n: 1\nafter: 2\n");
        assert_eq!(index.key(&["after"]), Some(pos(3, 1)));
    }
}
