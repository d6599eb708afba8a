//! Scaling out: which replica probes which target (SPEC §6,
//! `--shard.count=N --shard.index=I`).
//!
//! Targets are split by rendezvous (highest-random-weight) hashing of their
//! `name`: every replica computes, for each target, a weight per shard and
//! keeps the targets whose heaviest shard is its own. No coordination is
//! needed, every target has exactly one owner, and going from N to N+1
//! shards moves only the targets whose new heaviest shard is the new one
//! (about 1/(N+1) of them, and all to it).
//!
//! # The assignment, exactly
//!
//! It depends on nothing but the target's name and N, so it is the same
//! across versions, architectures and restarts, and another tool can
//! reproduce it (all arithmetic is on unsigned 64-bit integers, wrapping):
//!
//! ```text
//! fnv1a64(bytes):              # FNV-1a, 64 bit
//!     h = 0xcbf29ce484222325
//!     for b in bytes: h = (h XOR b) * 0x00000100000001b3
//!     return h
//!
//! splitmix64(x):               # SplitMix64's output function
//!     z = x + 0x9e3779b97f4a7c15
//!     z = (z XOR (z >> 30)) * 0xbf58476d1ce4e5b9
//!     z = (z XOR (z >> 27)) * 0x94d049bb133111eb
//!     return z XOR (z >> 31)
//!
//! weight(name, i) = splitmix64(fnv1a64(UTF-8 bytes of name) XOR splitmix64(i))
//! owner(name, N)  = the i in 0..N with the largest weight (the lowest i on a tie)
//! ```
//!
//! For example `owner("github", 3)` is 1 and `owner("openai", 3)` is 0
//! (pinned, with the weights, by this module's tests).

use std::fmt;

use crate::config::Config;

/// The most shards: each target's owner is found by weighing every shard,
/// and no deployment needs more replicas than this.
pub const MAX_SHARD_COUNT: u32 = 1000;

/// One replica's place among `count`: it probes the targets whose owner is
/// `index`. The default (0 of 1) owns every target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard.count must be between 1 and {MAX_SHARD_COUNT}, not {0}")]
    Count(u32),
    #[error(
        "--shard.index {index} is out of range for --shard.count {count}: indexes run from 0 to {last}",
        last = count - 1
    )]
    Index { index: u32, count: u32 },
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {} of {}", self.index, self.count)
    }
}

impl Shard {
    /// Shard `index` (from 0) of `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || count > MAX_SHARD_COUNT {
            return Err(ShardError::Count(count));
        }
        if index >= count {
            return Err(ShardError::Index { index, count });
        }
        Ok(Shard { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether this replica probes the target called `name`.
    pub fn owns(&self, name: &str) -> bool {
        self.count == 1 || owner(name, self.count) == self.index
    }

    /// `config` with only this shard's targets (file order kept).
    pub fn retain(&self, mut config: Config) -> Config {
        config.targets.retain(|t| self.owns(&t.name));
        config
    }
}

/// The shard (in `0..count`) that probes the target called `name`; 0 when
/// `count` is 0 or 1.
pub fn owner(name: &str, count: u32) -> u32 {
    let key = fnv1a64(name.as_bytes());
    let mut best = (0u32, weight(key, 0));
    for i in 1..count {
        let w = weight(key, i);
        // Strictly greater: a tie keeps the lower index.
        if w > best.1 {
            best = (i, w);
        }
    }
    best.0
}

/// Rendezvous weight of shard `index` for a name hashed to `key`.
fn weight(key: u64, index: u32) -> u64 {
    splitmix64(key ^ splitmix64(u64::from(index)))
}

/// 64-bit FNV-1a.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// SplitMix64's output function: a bijective 64-bit mixer.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `--shard.count`: a whole number from 1 to [`MAX_SHARD_COUNT`].
pub fn parse_count(s: &str) -> Result<u32, String> {
    let count = parse_number(s.trim()).ok_or_else(|| format!("{s:?} is not a whole number"))?;
    Shard::new(0, count)
        .map(|_| count)
        .map_err(|e| e.to_string())
}

/// `--shard.index`: a whole number, or a StatefulSet pod name ending in one
/// (`upstream-exporter-2` is 2), so that `metadata.name` can feed it
/// through the downward API.
pub fn parse_index(s: &str) -> Result<u32, String> {
    let s = s.trim();
    // `-1` is a negative number, not a pod name: the name needs a prefix.
    let digits = match s.rsplit_once('-') {
        Some((name, ordinal)) if !name.is_empty() => ordinal,
        _ => s,
    };
    parse_number(digits).ok_or_else(|| {
        format!(
            "{s:?} is neither a shard index (0, 1, 2, ...) nor a StatefulSet pod name ending in one (upstream-exporter-2)"
        )
    })
}

/// Plain decimal digits only (no sign, no spaces), within u32.
fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The hash primitives against published values, and the assignment
    /// against values computed independently from the module docs: any
    /// change here reshuffles every sharded deployment.
    #[test]
    fn assignment_is_pinned() {
        // FNV-1a 64 test vectors (Fowler/Noll/Vo).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // SplitMix64 seeded with 0: its first output is splitmix64(0).
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(weight(fnv1a64(b"github"), 0), 0x1254_b3bc_7cf8_a360);
        assert_eq!(weight(fnv1a64(b"openai"), 0), 0xfbfa_2915_1f4b_0cba);
        // (name, owner among 2, 3, 7 shards), from a Python transcription
        // of the module docs.
        let pinned = [
            ("github", [1, 1, 5]),
            ("openai", [0, 0, 0]),
            ("cloudflare", [1, 1, 4]),
            ("slack", [1, 2, 2]),
            ("ünïcödé", [1, 2, 4]),
            ("", [0, 2, 4]),
        ];
        for (name, owners) in pinned {
            for (count, want) in [2, 3, 7].into_iter().zip(owners) {
                assert_eq!(owner(name, count), want, "owner({name:?}, {count})");
            }
        }
    }

    #[test]
    fn validation_names_the_flag_and_the_range() {
        assert_eq!(Shard::new(0, 1), Ok(Shard::default()));
        assert_eq!(Shard::new(2, 3).map(|s| (s.index(), s.count())), Ok((2, 3)));
        let err = Shard::new(3, 3).unwrap_err().to_string();
        assert_eq!(
            err,
            "--shard.index 3 is out of range for --shard.count 3: indexes run from 0 to 2"
        );
        assert_eq!(
            Shard::new(0, 0).unwrap_err().to_string(),
            "--shard.count must be between 1 and 1000, not 0"
        );
        assert!(Shard::new(0, MAX_SHARD_COUNT + 1).is_err());
        assert!(Shard::new(0, MAX_SHARD_COUNT).is_ok());
    }

    #[test]
    fn index_accepts_numbers_and_statefulset_pod_names() {
        assert_eq!(parse_index("0"), Ok(0));
        assert_eq!(parse_index(" 7\n"), Ok(7));
        assert_eq!(parse_index("upstream-exporter-3"), Ok(3));
        assert_eq!(parse_index("prod-upstream-exporter-12"), Ok(12));
        for bad in [
            "",
            "-1",
            "+1",
            "x",
            "upstream-exporter",
            "upstream-exporter-",
            "3.0",
            "99999999999",
        ] {
            let err = parse_index(bad).unwrap_err();
            assert!(err.contains("StatefulSet pod name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn count_must_be_a_whole_number_in_range() {
        assert_eq!(parse_count("3"), Ok(3));
        assert!(parse_count("0").unwrap_err().contains("between 1 and 1000"));
        assert!(
            parse_count("1001")
                .unwrap_err()
                .contains("between 1 and 1000")
        );
        assert!(
            parse_count("three")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(
            parse_count("-2")
                .unwrap_err()
                .contains("not a whole number")
        );
    }

    #[test]
    fn one_shard_owns_everything() {
        let only = Shard::default();
        for name in ["", "github", "ünïcödé", "a\nb"] {
            assert!(only.owns(name));
            assert_eq!(owner(name, 1), 0);
        }
        assert_eq!(owner("github", 0), 0);
    }

    proptest! {
        /// Every name has exactly one owner among N shards, and going to
        /// N+1 either keeps it or moves it to the new shard.
        #[test]
        fn exactly_one_owner_and_moves_only_to_the_new_shard(
            name in "\\PC{0,40}",
            count in 1u32..=32,
        ) {
            let owners: Vec<u32> = (0..count)
                .filter(|&i| Shard::new(i, count).is_ok_and(|s| s.owns(&name)))
                .collect();
            prop_assert_eq!(owners, vec![owner(&name, count)]);
            let after = owner(&name, count + 1);
            prop_assert!(after == owner(&name, count) || after == count);
        }
    }
}
