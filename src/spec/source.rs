//! Where each key and value of a YAML document starts, so that errors found after
//! deserialisation (an invalid bucket name, a bad policy) can still point at `file:line:column`.
//!
//! serde_yaml reports positions only for its own errors; this index is built from the event
//! stream of a second, position-aware parser (yaml-rust2) over the same text. It knows nothing
//! about the spec's meaning: paths are plain lists of mapping keys and sequence indices.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl From<Marker> for Position {
    fn from(marker: Marker) -> Position {
        // yaml-rust2 counts lines from 1 and columns from 0.
        Position {
            line: marker.line().max(1),
            column: marker.col() + 1,
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
    /// Indexes `text`. A document that does not parse gives an empty index: serde_yaml reports
    /// the syntax error itself, with its position.
    pub fn build(text: &str) -> SourceIndex {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return SourceIndex::default();
        }
        SourceIndex {
            entries: builder.entries,
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

    fn find(&self, path: &[&str]) -> Option<&Entry> {
        (1..=path.len()).rev().find_map(|len| {
            let key: Vec<String> = path[..len].iter().map(|s| s.to_string()).collect();
            self.entries.get(&key)
        })
    }
}

enum Frame {
    /// In a mapping; `pending` holds the key just read and its position, awaiting its value.
    Mapping {
        pending: Option<(String, Position)>,
    },
    Sequence {
        next_index: usize,
    },
}

#[derive(Default)]
struct Builder {
    path: Vec<String>,
    frames: Vec<Frame>,
    entries: HashMap<Vec<String>, Entry>,
    /// Set when the current node is a complex (non-scalar) mapping key, which the spec never
    /// uses; its contents are not indexed.
    depth_in_complex_key: usize,
}

impl Builder {
    /// Called at the start of every node. Returns true when the node is a mapping key.
    fn start_node(&mut self, position: Position, scalar: Option<&str>) -> bool {
        match self.frames.last_mut() {
            Some(Frame::Mapping { pending }) => match pending.take() {
                None => {
                    // This node is a key.
                    *pending = Some((scalar.unwrap_or("?").to_string(), position));
                    true
                }
                Some((key, key_position)) => {
                    self.path.push(key);
                    self.entries.insert(
                        self.path.clone(),
                        Entry {
                            key: key_position,
                            value: position,
                        },
                    );
                    false
                }
            },
            Some(Frame::Sequence { next_index }) => {
                self.path.push(next_index.to_string());
                *next_index += 1;
                self.entries.insert(
                    self.path.clone(),
                    Entry {
                        key: position,
                        value: position,
                    },
                );
                false
            }
            None => false,
        }
    }

    /// Called at the end of every value node (not keys).
    fn end_value(&mut self) {
        if !self.frames.is_empty() {
            self.path.pop();
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        let position = Position::from(marker);
        if self.depth_in_complex_key > 0 {
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    self.depth_in_complex_key += 1;
                }
                Event::MappingEnd | Event::SequenceEnd => self.depth_in_complex_key -= 1,
                _ => {}
            }
            return;
        }
        match event {
            // A scalar or alias value is complete as soon as it starts.
            Event::Scalar(value, ..) if !self.start_node(position, Some(&value)) => {
                self.end_value();
            }
            Event::Alias(_) if !self.start_node(position, None) => self.end_value(),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if self.start_node(position, None) {
                    self.depth_in_complex_key = 1;
                    return;
                }
                let frame = match event {
                    Event::MappingStart(..) => Frame::Mapping { pending: None },
                    _ => Frame::Sequence { next_index: 0 },
                };
                self.frames.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.frames.pop();
                self.end_value();
            }
            _ => {}
        }
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
