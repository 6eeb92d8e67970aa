//! The bounded window of AppendRequests sent to one follower and not yet acknowledged.

use std::collections::VecDeque;

use super::types::LogIndex;

/// Last index of each in-flight AppendRequest, oldest first, at most `capacity` of them.
#[derive(Clone, Debug)]
pub(crate) struct Inflights {
    last_indexes: VecDeque<LogIndex>,
    capacity: usize,
}

impl Inflights {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            last_indexes: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.last_indexes.len() >= self.capacity
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.last_indexes.is_empty()
    }

    /// Records one more request in flight, whose entries end at `last_index`.
    pub(crate) fn add(&mut self, last_index: LogIndex) {
        self.last_indexes.push_back(last_index);
    }

    /// Frees every request whose entries are all acknowledged by a match at `index`.
    pub(crate) fn free_to(&mut self, index: LogIndex) {
        while self.last_indexes.front().is_some_and(|last| *last <= index) {
            self.last_indexes.pop_front();
        }
    }

    /// Frees the oldest request: it was probably lost, so let one new request through.
    pub(crate) fn free_first(&mut self) {
        self.last_indexes.pop_front();
    }

    pub(crate) fn clear(&mut self) {
        self.last_indexes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_fills_and_frees_by_acknowledged_index() {
        let mut inflights = Inflights::new(2);
        inflights.add(5);
        inflights.add(9);
        assert!(inflights.is_full());
        inflights.free_to(6);
        assert!(!inflights.is_full());
        inflights.free_to(9);
        assert!(inflights.is_empty());
    }
}
