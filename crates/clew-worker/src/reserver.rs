//! Reservers: the order in which a worker tries its queues.
//!
//! A [`Reserver`] is the policy; a [`QueueOrder`] applies it to a list of
//! queues and remembers where the last reserve stopped. The API is pure (no
//! I/O): ask [`QueueOrder::next_order`] for the queues to try, in order, and
//! call [`QueueOrder::tried`] for each queue as it is tried.
//!
//! With queues `A` (5 jobs), `B` (2) and `C` (3), listed `C, B, A`, popping
//! one job per reserve (qless's README example):
//! * [`Reserver::Ordered`] yields `C C C B B A A A A A`;
//! * [`Reserver::RoundRobin`] yields `C B A C B A C A A A`.

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;

/// How a worker chooses the next queue to pop from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reserver {
    /// Always try the queues in the order given: drain the first non-empty
    /// queue before touching the next.
    #[default]
    Ordered,
    /// Each reserve starts after the queue tried last and tries each queue
    /// at most once, popping one job at a time.
    RoundRobin,
    /// Like [`Reserver::RoundRobin`], over an order shuffled once at start
    /// (so that many workers with the same list do not move in step).
    ShuffledRoundRobin,
}

impl Reserver {
    /// The name used on command lines: `ordered`, `round-robin`,
    /// `shuffled-round-robin`.
    pub fn name(self) -> &'static str {
        match self {
            Reserver::Ordered => "ordered",
            Reserver::RoundRobin => "round-robin",
            Reserver::ShuffledRoundRobin => "shuffled-round-robin",
        }
    }

    /// Whether a reserve pops one job at a time (round robin) rather than
    /// as many as fit from the first non-empty queue (ordered).
    pub fn one_at_a_time(self) -> bool {
        !matches!(self, Reserver::Ordered)
    }
}

impl fmt::Display for Reserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Reserver {
    type Err = String;

    /// Parses [`Reserver::name`] (also accepts `_` for `-`, any case).
    fn from_str(s: &str) -> Result<Reserver, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "ordered" => Ok(Reserver::Ordered),
            "round-robin" | "roundrobin" => Ok(Reserver::RoundRobin),
            "shuffled-round-robin" | "shuffledroundrobin" | "shuffled" => {
                Ok(Reserver::ShuffledRoundRobin)
            }
            _ => Err(format!(
                "reserver: expected ordered, round-robin or shuffled-round-robin, got {s:?}"
            )),
        }
    }
}

/// A [`Reserver`] applied to a list of queues, with the position where the
/// last reserve stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOrder {
    reserver: Reserver,
    queues: Vec<String>,
    /// Index (into `queues`) of the queue a round-robin reserve starts at.
    start: usize,
}

impl QueueOrder {
    /// The order for `queues` under `reserver`. A shuffled round robin
    /// shuffles the list here, with the thread's random generator.
    pub fn new(reserver: Reserver, queues: Vec<String>) -> QueueOrder {
        QueueOrder::with_rng(reserver, queues, &mut rand::rng())
    }

    /// Like [`QueueOrder::new`], shuffling with `rng` (for reproducible tests).
    pub fn with_rng(
        reserver: Reserver,
        mut queues: Vec<String>,
        rng: &mut impl rand::Rng,
    ) -> QueueOrder {
        if reserver == Reserver::ShuffledRoundRobin {
            queues.shuffle(rng);
        }
        QueueOrder {
            reserver,
            queues,
            start: 0,
        }
    }

    /// The policy.
    pub fn reserver(&self) -> Reserver {
        self.reserver
    }

    /// The queues, in the order the policy walks them (shuffled for
    /// [`Reserver::ShuffledRoundRobin`]).
    pub fn queues(&self) -> &[String] {
        &self.queues
    }

    /// The queues to try for the next reserve, in order; each appears once.
    pub fn next_order(&self) -> Vec<&str> {
        let n = self.queues.len();
        match self.reserver {
            Reserver::Ordered => self.queues.iter().map(String::as_str).collect(),
            Reserver::RoundRobin | Reserver::ShuffledRoundRobin => (0..n)
                .map(|i| self.queues[(self.start + i) % n].as_str())
                .collect(),
        }
    }

    /// Records that `queue` was tried (whether or not it had a job): the
    /// next round-robin reserve starts after it.
    pub fn tried(&mut self, queue: &str) {
        if let Some(i) = self.queues.iter().position(|q| q == queue) {
            self.start = (i + 1) % self.queues.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::BTreeMap;

    /// Reserves one job at a time from `counts` until every queue is empty;
    /// returns the queues the jobs came from.
    fn drain(order: &mut QueueOrder, counts: &[(&str, usize)]) -> Vec<String> {
        let mut left: BTreeMap<String, usize> =
            counts.iter().map(|(q, n)| ((*q).to_owned(), *n)).collect();
        let mut out = Vec::new();
        loop {
            let try_order: Vec<String> =
                order.next_order().into_iter().map(str::to_owned).collect();
            let mut got = None;
            for q in try_order {
                order.tried(&q);
                let n = left.get_mut(&q).expect("known queue");
                if *n > 0 {
                    *n -= 1;
                    got = Some(q);
                    break;
                }
            }
            match got {
                Some(q) => out.push(q),
                None => return out,
            }
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    const README: [(&str, usize); 3] = [("A", 5), ("B", 2), ("C", 3)];

    #[test]
    fn ordered_drains_the_first_queue_first() {
        let mut o = QueueOrder::new(Reserver::Ordered, names(&["C", "B", "A"]));
        assert_eq!(
            drain(&mut o, &README).join(""),
            "CCCBBAAAAA",
            "qless README example"
        );
    }

    #[test]
    fn round_robin_takes_one_from_each_in_turn() {
        let mut o = QueueOrder::new(Reserver::RoundRobin, names(&["C", "B", "A"]));
        assert_eq!(
            drain(&mut o, &README).join(""),
            "CBACBACAAA",
            "qless README example"
        );
    }

    #[test]
    fn round_robin_starts_after_the_last_queue_tried() {
        let mut o = QueueOrder::new(Reserver::RoundRobin, names(&["a", "b", "c"]));
        assert_eq!(o.next_order(), ["a", "b", "c"]);
        o.tried("a");
        o.tried("b");
        assert_eq!(o.next_order(), ["c", "a", "b"]);
        o.tried("c");
        assert_eq!(o.next_order(), ["a", "b", "c"]);
        // An unknown queue changes nothing.
        o.tried("zzz");
        assert_eq!(o.next_order(), ["a", "b", "c"]);
    }

    #[test]
    fn ordered_ignores_what_was_tried() {
        let mut o = QueueOrder::new(Reserver::Ordered, names(&["a", "b"]));
        o.tried("a");
        assert_eq!(o.next_order(), ["a", "b"]);
    }

    #[test]
    fn shuffled_round_robin_is_a_round_robin_over_a_permutation() {
        let queues = names(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut o = QueueOrder::with_rng(Reserver::ShuffledRoundRobin, queues.clone(), &mut rng);
        let mut sorted = o.queues().to_vec();
        sorted.sort();
        assert_eq!(sorted, queues, "a permutation of the queues");
        assert_ne!(o.queues(), queues.as_slice(), "seed 3 shuffles");
        let walked: Vec<String> = o.queues().to_vec();
        let first = o.next_order()[0].to_owned();
        o.tried(&first);
        assert_eq!(o.next_order()[0], walked[1]);
        // Different workers (seeds) get different orders.
        let orders: std::collections::HashSet<Vec<String>> = (0..20)
            .map(|s| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(s);
                QueueOrder::with_rng(Reserver::ShuffledRoundRobin, queues.clone(), &mut rng)
                    .queues()
                    .to_vec()
            })
            .collect();
        assert!(orders.len() > 10);
    }

    #[test]
    fn empty_queue_list_is_harmless() {
        let mut o = QueueOrder::new(Reserver::RoundRobin, Vec::new());
        assert!(o.next_order().is_empty());
        o.tried("x");
        assert!(o.next_order().is_empty());
    }

    #[test]
    fn names_round_trip() {
        for r in [
            Reserver::Ordered,
            Reserver::RoundRobin,
            Reserver::ShuffledRoundRobin,
        ] {
            assert_eq!(r.name().parse::<Reserver>(), Ok(r));
        }
        assert_eq!("Round_Robin".parse::<Reserver>(), Ok(Reserver::RoundRobin));
        let e = "fifo".parse::<Reserver>().unwrap_err();
        assert!(e.contains("reserver") && e.contains("fifo"), "{e}");
    }
}
