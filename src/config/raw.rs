//! The config file exactly as written: serde types mirroring the YAML.
//!
//! Nothing here is validated beyond its YAML shape. Unknown keys are
//! rejected (`deny_unknown_fields`), and values that validation must point
//! at are wrapped in [`Spanned`] so errors can name their line and column.
//!
//! Scalars are read as strings (YAML `30`, `true` and `"30"` all arrive as
//! text) so that `${ENV}` expansion can run before numbers, booleans,
//! durations and sizes are parsed, and so that a wrong value is reported by
//! `validate` with a message that says what to write instead.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::probe::ProberKind;

/// An optional value with its position, boxed: a `Spanned` carries two
/// locations (~70 bytes), and a target sets few of its 26 optional fields.
/// Unboxed, 10,000 parsed targets held a 42 MB vector at start.
pub(super) type Opt<T> = Option<Box<Spanned<T>>>;

/// A YAML mapping of string keys to string values, in file order, with the
/// position of every key and value (`labels:`, `headers:`). Duplicate keys
/// are rejected by the parser.
#[derive(Default)]
pub(super) struct SpannedMap(pub Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for SpannedMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;

        impl<'de> Visitor<'de> for MapVisitor {
            type Value = SpannedMap;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of names to string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpannedMap, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(SpannedMap(entries))
            }

            fn visit_unit<E: de::Error>(self) -> Result<SpannedMap, E> {
                Ok(SpannedMap::default())
            }
        }

        d.deserialize_map(MapVisitor)
    }
}

/// A field whose mere presence matters, even with an empty (`null`) value:
/// `slack:` alone still selects the `slack` prober. A missing key is
/// `Present(None)` via `#[serde(default)]`. Boxed, like [`Opt`]: a target
/// names one prober of ten, and the other nine cost a pointer each.
pub(super) struct Present<T>(pub Option<Box<T>>);

impl<T> Default for Present<T> {
    fn default() -> Self {
        Present(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|v| Present(Some(Box::new(v))))
    }
}

/// Top level of `exporter.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub defaults: Opt<RawDefaults>,
    pub concurrency: Opt<String>,
    pub per_host_concurrency: Opt<String>,
    pub min_interval_per_host: Opt<String>,
    pub targets: Opt<Vec<Spanned<RawTarget>>>,
}

/// `backoff: { initial, max }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackoff {
    pub initial: Opt<String>,
    pub max: Opt<String>,
}

/// `tls: { ca_file, cert_file, key_file, server_name, insecure_skip_verify }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub ca_file: Opt<String>,
    pub cert_file: Opt<String>,
    pub key_file: Opt<String>,
    pub server_name: Opt<String>,
    pub insecure_skip_verify: Opt<String>,
}

/// The fields shared by `defaults:` and every target, borrowed from either.
pub(super) struct RawCommon<'a> {
    pub interval: Option<&'a Spanned<String>>,
    pub timeout: Option<&'a Spanned<String>>,
    pub retries: Option<&'a Spanned<String>>,
    pub backoff: Option<&'a Spanned<RawBackoff>>,
    pub max_body_size: Option<&'a Spanned<String>>,
    pub headers: Option<&'a Spanned<SpannedMap>>,
    pub headers_file: Option<&'a Spanned<SpannedMap>>,
    pub user_agent: Option<&'a Spanned<String>>,
    pub tls: Option<&'a Spanned<RawTls>>,
    pub proxy_url: Option<&'a Spanned<String>>,
    pub proxy_url_file: Option<&'a Spanned<String>>,
    pub stale_after: Option<&'a Spanned<String>>,
}

/// Declares a struct with the given head and tail fields around the common
/// fields of `defaults:` (so the two lists cannot drift apart), plus a
/// `common()` accessor.
macro_rules! with_common_fields {
    (
        $(#[$attr:meta])*
        struct $name:ident {
            $( $(#[$hattr:meta])* $head:ident : $hty:ty, )*
        } {
            $( $(#[$tattr:meta])* $tail:ident : $tty:ty, )*
        }
    ) => {
        $(#[$attr])*
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $name {
            $( $(#[$hattr])* pub $head: $hty, )*
            pub interval: Opt<String>,
            pub timeout: Opt<String>,
            pub retries: Opt<String>,
            pub backoff: Opt<RawBackoff>,
            pub max_body_size: Opt<String>,
            pub headers: Opt<SpannedMap>,
            /// Header name → file holding its value (a secret kept out of the file).
            pub headers_file: Opt<SpannedMap>,
            pub user_agent: Opt<String>,
            pub tls: Opt<RawTls>,
            pub proxy_url: Opt<String>,
            pub proxy_url_file: Opt<String>,
            pub stale_after: Opt<String>,
            $( $(#[$tattr])* pub $tail: $tty, )*
        }

        impl $name {
            pub fn common(&self) -> RawCommon<'_> {
                RawCommon {
                    interval: self.interval.as_deref(),
                    timeout: self.timeout.as_deref(),
                    retries: self.retries.as_deref(),
                    backoff: self.backoff.as_deref(),
                    max_body_size: self.max_body_size.as_deref(),
                    headers: self.headers.as_deref(),
                    headers_file: self.headers_file.as_deref(),
                    user_agent: self.user_agent.as_deref(),
                    tls: self.tls.as_deref(),
                    proxy_url: self.proxy_url.as_deref(),
                    proxy_url_file: self.proxy_url_file.as_deref(),
                    stale_after: self.stale_after.as_deref(),
                }
            }
        }
    };
}

with_common_fields! {
    /// `defaults:`: every common field, each overridable per target.
    struct RawDefaults {} {}
}

with_common_fields! {
    /// One entry of `targets:`.
    struct RawTarget {
        name: Opt<String>,
        labels: Opt<SpannedMap>,
    } {
        bearer_token: Opt<String>,
        bearer_token_file: Opt<String>,
        // Prober blocks (SPEC §3), boxed: a target names one, and nine
        // unboxed blocks made every parsed target 6 KB (60 MB of peak
        // memory for 10,000 targets at start). Exactly one must be present. To add one,
        // give it a raw type here, a variant in `RawProber` and a branch in
        // `validate`'s `prober_block`.
        #[serde(default)]
        statuspage: Present<Spanned<Option<Box<RawStatuspage>>>>,
        #[serde(default)]
        statusio: Present<Spanned<Option<Box<RawStatusio>>>>,
        #[serde(default)]
        instatus: Present<Spanned<Option<Box<RawVendor>>>>,
        #[serde(default)]
        cachet: Present<Spanned<Option<Box<RawVendor>>>>,
        #[serde(default)]
        slack: Present<Spanned<Option<Box<RawVendor>>>>,
        #[serde(default)]
        google_cloud: Present<Spanned<Option<Box<RawGoogleCloud>>>>,
        #[serde(default)]
        heroku: Present<Spanned<Option<Box<RawVendor>>>>,
        #[serde(default)]
        salesforce: Present<Spanned<Option<Box<RawVendor>>>>,
        #[serde(default)]
        http: Present<Spanned<Option<Box<RawHttp>>>>,
        #[serde(default)]
        json: Present<Spanned<Option<Box<RawJson>>>>,
    }
}

/// One prober block found in a target; each holds `None` when the block
/// was written with an empty value (`slack:` or `slack: ~`).
pub(super) enum RawProber<'a> {
    Statuspage(&'a Spanned<Option<Box<RawStatuspage>>>),
    Statusio(&'a Spanned<Option<Box<RawStatusio>>>),
    /// `instatus`, `cachet`, `slack`, `heroku` or `salesforce`: the blocks
    /// with only the common status-page fields.
    Vendor(ProberKind, &'a Spanned<Option<Box<RawVendor>>>),
    GoogleCloud(&'a Spanned<Option<Box<RawGoogleCloud>>>),
    Http(&'a Spanned<Option<Box<RawHttp>>>),
    Json(&'a Spanned<Option<Box<RawJson>>>),
}

impl RawProber<'_> {
    pub fn kind(&self) -> ProberKind {
        match self {
            RawProber::Statuspage(_) => ProberKind::Statuspage,
            RawProber::Statusio(_) => ProberKind::Statusio,
            RawProber::Vendor(kind, _) => *kind,
            RawProber::GoogleCloud(_) => ProberKind::GoogleCloud,
            RawProber::Http(_) => ProberKind::Http,
            RawProber::Json(_) => ProberKind::Json,
        }
    }

    /// Where the block's value starts.
    pub fn location(&self) -> Location {
        match self {
            RawProber::Statuspage(s) => s.referenced,
            RawProber::Statusio(s) => s.referenced,
            RawProber::Vendor(_, s) => s.referenced,
            RawProber::GoogleCloud(s) => s.referenced,
            RawProber::Http(s) => s.referenced,
            RawProber::Json(s) => s.referenced,
        }
    }
}

/// Every prober block name, in the order they are listed in messages.
pub(super) const PROBER_BLOCKS: [ProberKind; 10] = [
    ProberKind::Statuspage,
    ProberKind::Statusio,
    ProberKind::Instatus,
    ProberKind::Cachet,
    ProberKind::Slack,
    ProberKind::GoogleCloud,
    ProberKind::Heroku,
    ProberKind::Salesforce,
    ProberKind::Http,
    ProberKind::Json,
];

impl RawTarget {
    /// The prober blocks present in this target, in file order.
    pub fn probers(&self) -> Vec<RawProber<'_>> {
        let mut found = Vec::with_capacity(1);
        if let Some(block) = &self.statuspage.0 {
            found.push(RawProber::Statuspage(block));
        }
        if let Some(block) = &self.statusio.0 {
            found.push(RawProber::Statusio(block));
        }
        let vendors = [
            (ProberKind::Instatus, &self.instatus),
            (ProberKind::Cachet, &self.cachet),
            (ProberKind::Slack, &self.slack),
            (ProberKind::Heroku, &self.heroku),
            (ProberKind::Salesforce, &self.salesforce),
        ];
        for (kind, block) in vendors {
            if let Some(block) = &block.0 {
                found.push(RawProber::Vendor(kind, block));
            }
        }
        if let Some(block) = &self.google_cloud.0 {
            found.push(RawProber::GoogleCloud(block));
        }
        if let Some(block) = &self.http.0 {
            found.push(RawProber::Http(block));
        }
        if let Some(block) = &self.json.0 {
            found.push(RawProber::Json(block));
        }
        found.sort_by_key(|p| {
            let loc = p.location();
            (loc.line(), loc.column())
        });
        found
    }
}

/// `statuspage: { url, components, max_components }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatuspage {
    pub url: Opt<String>,
    pub components: Opt<RawComponents>,
    pub max_components: Opt<String>,
}

/// `components: { include: [...], exclude: [...] }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawComponents {
    pub include: Option<Vec<Spanned<String>>>,
    pub exclude: Option<Vec<Spanned<String>>>,
}

/// `instatus:`, `cachet:`, `slack:`, `heroku:`, `salesforce:`
/// (`{ url, components, max_components }`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVendor {
    pub url: Opt<String>,
    pub components: Opt<RawComponents>,
    pub max_components: Opt<String>,
}

/// `statusio: { url, page_id, components, max_components }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatusio {
    pub url: Opt<String>,
    pub page_id: Opt<String>,
    pub components: Opt<RawComponents>,
    pub max_components: Opt<String>,
}

/// `google_cloud: { url, products, components, max_components }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGoogleCloud {
    pub url: Opt<String>,
    pub products: Option<Vec<Spanned<String>>>,
    pub components: Opt<RawComponents>,
    pub max_components: Opt<String>,
}

/// `http: { url, method, headers, headers_file, body, expect, follow_redirects }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub url: Opt<String>,
    pub method: Opt<String>,
    pub headers: Opt<SpannedMap>,
    pub headers_file: Opt<SpannedMap>,
    pub body: Opt<String>,
    pub body_file: Opt<String>,
    pub expect: Opt<RawExpect>,
    pub follow_redirects: Opt<String>,
}

/// `expect: { status, body_regex, body_not_regex, max_latency }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub status: Opt<OneOrMany>,
    pub body_regex: Opt<String>,
    pub body_not_regex: Opt<String>,
    pub max_latency: Opt<String>,
}

/// A list of scalars, or one scalar standing for a list of one
/// (`status: [200, "3xx"]` or `status: 204`).
pub(super) enum OneOrMany {
    /// A single scalar; its position is the enclosing `Spanned`'s.
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;

        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value or a list of values")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }

            fn visit_unit<E: de::Error>(self) -> Result<OneOrMany, E> {
                Ok(OneOrMany::Many(Vec::new()))
            }
        }

        d.deserialize_any(OneOrManyVisitor)
    }
}

/// `json: { url, auth, headers, headers_file, metrics }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJson {
    pub url: Opt<String>,
    pub auth: Opt<RawAuth>,
    pub headers: Opt<SpannedMap>,
    pub headers_file: Opt<SpannedMap>,
    pub metrics: Opt<Vec<Spanned<RawJsonMetric>>>,
}

/// `auth: { basic: {...} }` or `auth: { bearer_token | bearer_token_file }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub basic: Opt<RawBasicAuth>,
    pub bearer_token: Opt<String>,
    pub bearer_token_file: Opt<String>,
}

/// `basic: { username, password | password_file }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBasicAuth {
    pub username: Opt<String>,
    pub password: Opt<String>,
    pub password_file: Opt<String>,
}

/// One entry of `json.metrics`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJsonMetric {
    pub name: Opt<String>,
    pub help: Opt<String>,
    #[serde(rename = "type")]
    pub kind: Opt<String>,
    pub path: Opt<String>,
    pub value: Opt<String>,
    pub labels: Opt<SpannedMap>,
    pub value_map: Opt<SpannedMap>,
}
#[cfg(test)]
mod tests {
    /// Every parsed target lives until the whole file is validated: at
    /// 10,000 targets each 100 bytes here is 1 MB of peak memory at start
    /// (2 MB while the vector grows).
    #[test]
    fn a_parsed_target_stays_small() {
        let size = std::mem::size_of::<super::RawTarget>();
        assert!(size <= 256, "RawTarget is {size} bytes");
    }
}
