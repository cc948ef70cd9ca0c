//! The walk of a whole-cluster SCAN, without I/O: which primary to ask next with which
//! cursor, where to go on when a primary goes away mid-walk, and which nodes to walk
//! again when slots moved meanwhile. The blocking [`ClusterScan`](super::ClusterScan) and
//! the async [`ClusterScanStream`](super::aio::ClusterScanStream) both drive it.

use super::router::{ReadFrom, SlotMap, SLOTS};
use crate::{Error, ErrorKind};
use redis_commands::{CursorLoop, FromValueError};

/// Extra passes a walk makes over nodes whose slots changed hands during the previous
/// pass; bounds a walk while slots keep moving.
const MAX_RECHECKS: u32 = 8;

/// What the driver of a walk does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step<'w> {
    /// Send SCAN with this cursor to this node and hand the reply to
    /// [`ScanWalk::advance`].
    Scan(&'w str, u64),
    /// Every node of the pass is walked: fetch the slot map again and hand it to
    /// [`ScanWalk::recheck`].
    Recheck,
    /// The walk is over.
    Done,
}

/// Which primary served each slot when last looked at.
#[derive(Clone, Debug)]
struct Owners {
    names: Vec<String>,
    /// Per slot, an index into `names`, or `u16::MAX` for none.
    slots: Vec<u16>,
}

impl Owners {
    fn of(map: &SlotMap) -> Owners {
        let mut owners = Owners {
            names: Vec::new(),
            slots: vec![u16::MAX; usize::from(SLOTS)],
        };
        for slot in 0..SLOTS {
            if let Some(addr) = map.node(slot, ReadFrom::Primary) {
                owners.set(slot, addr);
            }
        }
        owners
    }

    fn get(&self, slot: u16) -> Option<&str> {
        let i = *self.slots.get(usize::from(slot))?;
        self.names.get(usize::from(i)).map(String::as_str)
    }

    fn set(&mut self, slot: u16, addr: &str) {
        let i = match self.names.iter().position(|n| n == addr) {
            Some(i) => i,
            None => {
                self.names.push(addr.to_owned());
                self.names.len() - 1
            }
        };
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            *s = i as u16;
        }
    }
}

/// Where a whole-cluster SCAN stands: the primaries still to walk, the cursor on the
/// current one, and who served each slot when the pass began.
#[derive(Clone, Debug)]
pub(super) struct ScanWalk {
    /// The primaries still to walk (the current one first), each with the first slot of
    /// each of its ranges, to find who serves them if the node goes away.
    nodes: Vec<(String, Vec<u16>)>,
    cursor: u64,
    /// The cursors the current node gave, to find a node that goes round in circles.
    seen: CursorLoop,
    done: bool,
    /// Who served each slot when this pass began (updated for nodes lost and replaced).
    owners: Owners,
    rechecks: u32,
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
            seen: CursorLoop::default(),
            done: false,
            owners: Owners::of(map),
            rechecks: 0,
        }
    }

    /// What to do next.
    pub(super) fn next(&self) -> Step<'_> {
        if self.done {
            return Step::Done;
        }
        match self.nodes.first() {
            Some((a, _)) => Step::Scan(a, self.cursor),
            None if self.rechecks < MAX_RECHECKS => Step::Recheck,
            None => Step::Done,
        }
    }

    /// Takes the cursor the current node answered: 0 ends that node's walk.
    ///
    /// # Errors
    /// A cursor the node already gave in this walk of it (it would go round forever): the
    /// walk ends.
    pub(super) fn advance(&mut self, cursor: u64) -> Result<(), FromValueError> {
        if self.seen.repeats(cursor) {
            self.done = true;
            return Err(FromValueError::Type {
                expected: "a SCAN cursor not given before in the same walk",
                actual: format!("cursor {cursor} again"),
            });
        }
        if cursor == 0 {
            if !self.nodes.is_empty() {
                self.nodes.remove(0);
            }
            self.cursor = 0;
            self.seen = CursorLoop::default();
        } else {
            self.cursor = cursor;
        }
        Ok(())
    }

    /// Takes the map fetched after a pass. A key whose slot changed hands during the pass
    /// may have been in neither node when each was walked: every node now serving such a
    /// slot is walked again, from the start (keys may come twice, as SCAN allows). The
    /// walk ends when no slot moved.
    pub(super) fn recheck(&mut self, map: &SlotMap) {
        let mut again: Vec<String> = Vec::new();
        for slot in 0..SLOTS {
            let now = map.node(slot, ReadFrom::Primary);
            if let Some(now) = now {
                if self.owners.get(slot) != Some(now) && !again.iter().any(|a| a == now) {
                    again.push(now.to_owned());
                }
            }
        }
        if again.is_empty() {
            self.done = true;
            return;
        }
        self.rechecks += 1;
        self.owners = Owners::of(map);
        self.cursor = 0;
        self.seen = CursorLoop::default();
        self.nodes = again
            .into_iter()
            .map(|a| {
                let slots = map.slots_of(&a);
                (a, slots)
            })
            .collect();
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
        // The replacements are walked whole from now on: their taking over the lost
        // node's slots needs no second walk at the recheck.
        for slot in 0..SLOTS {
            if self.owners.get(slot) == Some(addr.as_str()) {
                if let Some(now) = map.node(slot, ReadFrom::Primary) {
                    self.owners.set(slot, now);
                }
            }
        }
        self.nodes.remove(0);
        self.cursor = 0;
        self.seen = CursorLoop::default();
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
        assert_eq!(w.next(), Step::Scan("a:1", 0));
        w.advance(17).unwrap();
        assert_eq!(w.next(), Step::Scan("a:1", 17));
        w.advance(0).unwrap();
        assert_eq!(w.next(), Step::Scan("b:1", 0));
        w.advance(0).unwrap();
        assert_eq!(w.next(), Step::Recheck);
        w.recheck(&m);
        assert_eq!(w.next(), Step::Done);
    }

    #[test]
    fn slots_moved_during_a_pass_have_their_new_owner_walked_again() {
        let before = map(&[("a:1", (0, 8000)), ("b:1", (8001, 16383))]);
        let mut w = ScanWalk::new(&before);
        w.advance(0).unwrap();
        // b's upper slots moved to a, already walked, while b was being walked.
        let after = map(&[
            ("a:1", (0, 8000)),
            ("b:1", (8001, 12000)),
            ("a:1", (12001, 16383)),
        ]);
        w.advance(0).unwrap();
        assert_eq!(w.next(), Step::Recheck);
        w.recheck(&after);
        assert_eq!(w.next(), Step::Scan("a:1", 0));
        w.advance(0).unwrap();
        w.recheck(&after);
        assert_eq!(w.next(), Step::Done);
    }

    #[test]
    fn slots_that_keep_moving_end_the_walk_after_eight_extra_passes() {
        let maps = [
            map(&[("a:1", (0, 8000)), ("b:1", (8001, 16383))]),
            map(&[("a:1", (0, 9000)), ("b:1", (9001, 16383))]),
        ];
        let mut w = ScanWalk::new(&maps[0]);
        let mut passes = 0;
        loop {
            match w.next() {
                Step::Scan(_, _) => w.advance(0).unwrap(),
                Step::Recheck => {
                    passes += 1;
                    w.recheck(&maps[passes % 2]);
                }
                Step::Done => break,
            }
        }
        assert_eq!(passes, 8);
    }

    #[test]
    fn a_lost_node_is_walked_again_where_its_slots_went() {
        let before = map(&[
            ("a:1", (0, 5000)),
            ("b:1", (5001, 10000)),
            ("c:1", (10001, 16383)),
        ]);
        let mut w = ScanWalk::new(&before);
        w.advance(0).unwrap();
        w.advance(42).unwrap();
        assert_eq!(w.next(), Step::Scan("b:1", 42));
        // b's replica took over.
        let after = map(&[
            ("a:1", (0, 5000)),
            ("b:2", (5001, 10000)),
            ("c:1", (10001, 16383)),
        ]);
        assert!(w.node_lost(&after));
        assert_eq!(w.next(), Step::Scan("b:2", 0));
        w.advance(0).unwrap();
        assert_eq!(w.next(), Step::Scan("c:1", 0));
        w.advance(0).unwrap();
        // The replica's taking over was walked already: no second pass.
        w.recheck(&after);
        assert_eq!(w.next(), Step::Done);

        let mut w = ScanWalk::new(&after);
        // A node whose slots nobody else serves ends the walk.
        assert!(!w.node_lost(&after));
        assert_eq!(w.next(), Step::Done);
    }
}
