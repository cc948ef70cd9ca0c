//! The walk of a whole-cluster SCAN, without I/O: which primary to ask next with which
//! cursor, and where to go on when a primary goes away mid-walk. The blocking
//! [`ClusterScan`](super::ClusterScan) and the async
//! [`ClusterScanStream`](super::aio::ClusterScanStream) both drive it.

use super::router::{ReadFrom, SlotMap};
use crate::{Error, ErrorKind};

/// Where a whole-cluster SCAN stands: the primaries still to walk and the cursor on the
/// current one.
#[derive(Clone, Debug)]
pub(super) struct ScanWalk {
    /// The primaries still to walk (the current one first), each with the first slot of
    /// each of its ranges, to find who serves them if the node goes away.
    nodes: Vec<(String, Vec<u16>)>,
    cursor: u64,
    done: bool,
}

impl ScanWalk {
    /// A walk of every primary of `map`, in the map's order.
    pub(super) fn new(map: &SlotMap) -> ScanWalk {
        ScanWalk {
            nodes: map
                .primaries()
                .into_iter()
                .map(|p| (p.to_owned(), map.slots_of(p)))
                .collect(),
            cursor: 0,
            done: false,
        }
    }

    /// The node to send the next SCAN to and its cursor; `None` once the walk is over.
    pub(super) fn next(&self) -> Option<(&str, u64)> {
        if self.done {
            return None;
        }
        self.nodes.first().map(|(a, _)| (a.as_str(), self.cursor))
    }

    /// Takes the cursor the current node answered: 0 ends that node's walk.
    pub(super) fn advance(&mut self, cursor: u64) {
        if cursor == 0 {
            if !self.nodes.is_empty() {
                self.nodes.remove(0);
            }
            self.cursor = 0;
        } else {
            self.cursor = cursor;
        }
    }

    /// The current node went away; `map` is a map fetched since. Its walk is replaced by
    /// walks, from the start, of the nodes now serving its slots (keys it had yielded may
    /// come again, as SCAN allows; none present throughout is missed). False, and the walk
    /// ends, when no other node serves them.
    pub(super) fn node_lost(&mut self, map: &SlotMap) -> bool {
        let Some((addr, slots)) = self.nodes.first().cloned() else {
            self.done = true;
            return false;
        };
        let mut replacements: Vec<String> = Vec::new();
        for &s in &slots {
            if let Some(a) = map.node(s, ReadFrom::Primary) {
                if a != addr && !replacements.iter().any(|r| r == a) {
                    replacements.push(a.to_owned());
                }
            }
        }
        if replacements.is_empty() {
            self.done = true;
            return false;
        }
        self.nodes.remove(0);
        self.cursor = 0;
        for r in replacements.into_iter().rev() {
            if !self.nodes.iter().any(|(a, _)| *a == r) {
                let slots = map.slots_of(&r);
                self.nodes.insert(0, (r, slots));
            }
        }
        true
    }

    /// Ends the walk (after an error it yields).
    pub(super) fn finish(&mut self) {
        self.done = true;
    }
}

/// True when a SCAN failed because its node could not be reached: the walk goes on at the
/// nodes now serving that node's slots.
pub(super) fn node_gone(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::router::Shard;

    fn map(shards: &[(&str, (u16, u16))]) -> SlotMap {
        SlotMap::from_shards(
            shards
                .iter()
                .map(|(p, r)| Shard {
                    primary: (*p).into(),
                    replicas: Vec::new(),
                    ranges: vec![*r],
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn walks_every_primary_then_ends() {
        let m = map(&[("a:1", (0, 8000)), ("b:1", (8001, 16383))]);
        let mut w = ScanWalk::new(&m);
        assert_eq!(w.next(), Some(("a:1", 0)));
        w.advance(17);
        assert_eq!(w.next(), Some(("a:1", 17)));
        w.advance(0);
        assert_eq!(w.next(), Some(("b:1", 0)));
        w.advance(0);
        assert_eq!(w.next(), None);
    }

    #[test]
    fn a_lost_node_is_walked_again_where_its_slots_went() {
        let before = map(&[
            ("a:1", (0, 5000)),
            ("b:1", (5001, 10000)),
            ("c:1", (10001, 16383)),
        ]);
        let mut w = ScanWalk::new(&before);
        w.advance(0);
        w.advance(42);
        assert_eq!(w.next(), Some(("b:1", 42)));
        // b's replica took over.
        let after = map(&[
            ("a:1", (0, 5000)),
            ("b:2", (5001, 10000)),
            ("c:1", (10001, 16383)),
        ]);
        assert!(w.node_lost(&after));
        assert_eq!(w.next(), Some(("b:2", 0)));
        w.advance(0);
        assert_eq!(w.next(), Some(("c:1", 0)));
        // A node whose slots nobody else serves ends the walk.
        assert!(!w.node_lost(&after));
        assert_eq!(w.next(), None);
    }
}
