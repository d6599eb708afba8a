//! Validation of the prober blocks other than `statuspage`: the vendor
//! status-page blocks (`statusio`, `instatus`, `cachet`, `slack`,
//! `google_cloud`, `heroku`, `salesforce`), `http` and `json`.
//!
//! Same rules as the rest of `validate`: every issue is collected with its
//! line and column, secrets never appear in messages, and what can be
//! compiled (regexes, JSONPath queries) is compiled once here.

use serde_json_path::JsonPath;
use serde_saphyr::Spanned;
use url::Url;

use super::{
    Credentials, Ctx, Field, Pos, ProberOut, Wrap, bad_regex, is_header_value, is_label_name,
    parse_http_url, pos, shown, take_userinfo,
};
use crate::config::raw::{
    OneOrMany, RawAuth, RawBasicAuth, RawComponents, RawExpect, RawGoogleCloud, RawHttp, RawJson,
    RawJsonMetric, RawStatusio, RawVendor,
};
use crate::config::{ComponentFilter, ProberConfig, Secret, defaults};
use crate::probe::http_check::{self, Expectations, HttpCheckConfig, Pattern, StatusRange};
use crate::probe::json::{self, JsonConfig, JsonRule, LabelSource, MetricKind};
use crate::probe::{
    ProberKind, cachet, google_cloud, heroku, instatus, salesforce, slack, statusio,
};

/// Metric name prefixes the exporter's own families use.
const RESERVED_METRIC_PREFIXES: [&str; 3] = ["upstream_", "process_", "__"];

/// Where a `json` metric family was first defined (for cross-target checks).
#[derive(Debug, Clone)]
pub(super) struct FamilySeen {
    kind: MetricKind,
    pos: Pos,
    target: String,
}

/// What every vendor status-page block has.
struct VendorCommon {
    base_url: Url,
    auth: Option<Credentials>,
    components: ComponentFilter,
    max_components: usize,
}

/// A rule with what the collision checks need.
struct RuleOut {
    rule: JsonRule,
    pos: Pos,
    /// Label values when every label is static (then the rule's series are
    /// known at load).
    static_values: Option<Vec<String>>,
}

/// `^[a-zA-Z_:][a-zA-Z0-9_:]*$`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn default_base(kind: ProberKind) -> Option<&'static str> {
    match kind {
        ProberKind::Statusio => statusio::DEFAULT_BASE_URL,
        ProberKind::Instatus => instatus::DEFAULT_BASE_URL,
        ProberKind::Cachet => cachet::DEFAULT_BASE_URL,
        ProberKind::Slack => slack::DEFAULT_BASE_URL,
        ProberKind::GoogleCloud => google_cloud::DEFAULT_BASE_URL,
        ProberKind::Heroku => heroku::DEFAULT_BASE_URL,
        ProberKind::Salesforce => salesforce::DEFAULT_BASE_URL,
        ProberKind::Statuspage | ProberKind::Http | ProberKind::Json => None,
    }
}

impl Ctx<'_> {
    /// A block's `url`: required, absolute http(s); userinfo moved out into
    /// basic-auth credentials. `what` describes the URL in the message.
    fn required_url(
        &mut self,
        url: Option<&Spanned<String>>,
        block: Pos,
        kind: ProberKind,
        what: &str,
        label: &str,
    ) -> Option<(Url, Option<Credentials>)> {
        let Some(s) = url else {
            self.error(block, format!("{label}: `{kind}` needs a `url`, {what}"));
            return None;
        };
        let text = self.text(s)?;
        match parse_http_url(&text, "url") {
            Ok(mut url) => {
                let auth = take_userinfo(&mut url).map(|value| Credentials {
                    value,
                    pos: pos(s),
                    how: "a user and password in the URL",
                });
                Some((url, auth))
            }
            Err(msg) => {
                self.error(pos(s), msg);
                None
            }
        }
    }

    /// `url`, `components` and `max_components` of a vendor block; `url`
    /// defaults to the vendor's public API where there is one.
    fn vendor_common(
        &mut self,
        kind: ProberKind,
        block: Pos,
        url: Option<&Spanned<String>>,
        components: Option<&Spanned<RawComponents>>,
        max_components: Option<&Spanned<String>>,
        label: &str,
    ) -> Option<VendorCommon> {
        let base = match (url, default_base(kind)) {
            (None, Some(default)) => match Url::parse(default) {
                Ok(url) => Some((url, None)),
                Err(e) => {
                    self.error(
                        block,
                        format!("built-in URL of `{kind}` is invalid ({e}): please report this"),
                    );
                    None
                }
            },
            (url, _) => self.required_url(
                url,
                block,
                kind,
                "the status page's base URL (like `https://status.example.com`)",
                label,
            ),
        };
        let components = match components {
            None => Some(ComponentFilter::default()),
            Some(c) => self.components(&c.value),
        };
        let max_components = self.count(
            max_components,
            "max_components",
            defaults::MAX_COMPONENTS as u64,
            1,
            u64::from(u32::MAX),
        );
        let (base_url, auth) = base?;
        Some(VendorCommon {
            base_url,
            auth,
            components: components?,
            max_components: usize::try_from(max_components?).ok()?,
        })
    }

    /// `instatus`, `cachet`, `slack`, `heroku`, `salesforce`.
    pub(super) fn vendor(
        &mut self,
        kind: ProberKind,
        block: &Spanned<Option<Box<RawVendor>>>,
        label: &str,
    ) -> Option<ProberOut> {
        let (url, components, max) = match &block.value {
            Some(raw) => (
                raw.url.as_deref(),
                raw.components.as_deref(),
                raw.max_components.as_deref(),
            ),
            None => (None, None, None),
        };
        let c = self.vendor_common(kind, pos(block), url, components, max, label)?;
        let config = match kind {
            ProberKind::Instatus => ProberConfig::Instatus(instatus::InstatusConfig {
                base_url: c.base_url,
                components: c.components,
                max_components: c.max_components,
            }),
            ProberKind::Cachet => ProberConfig::Cachet(cachet::CachetConfig {
                base_url: c.base_url,
                components: c.components,
                max_components: c.max_components,
            }),
            ProberKind::Slack => ProberConfig::Slack(slack::SlackConfig {
                base_url: c.base_url,
                components: c.components,
                max_components: c.max_components,
            }),
            ProberKind::Heroku => ProberConfig::Heroku(heroku::HerokuConfig {
                base_url: c.base_url,
                components: c.components,
                max_components: c.max_components,
            }),
            ProberKind::Salesforce => ProberConfig::Salesforce(salesforce::SalesforceConfig {
                base_url: c.base_url,
                components: c.components,
                max_components: c.max_components,
            }),
            other => {
                self.error(
                    pos(block),
                    format!("internal error: `{other}` is not a plain vendor block"),
                );
                return None;
            }
        };
        Some(ProberOut {
            auth: c.auth.into_iter().collect(),
            ..ProberOut::new(config)
        })
    }

    pub(super) fn statusio(
        &mut self,
        block: &Spanned<Option<Box<RawStatusio>>>,
        label: &str,
    ) -> Option<ProberOut> {
        let example = "write `statusio: { page_id: 533c6539221ae15e3f000031 }` (Docker's page)";
        let Some(raw) = &block.value else {
            self.error(
                pos(block),
                format!("{label}: `statusio` needs a `page_id`: {example}"),
            );
            return None;
        };
        let page_id = match &raw.page_id {
            None => {
                self.error(
                    pos(block),
                    format!("{label}: `statusio` needs a `page_id`: {example}"),
                );
                None
            }
            Some(s) => match self.string(Some(s), "page_id") {
                Field::Set(id, _) => Some(id.trim().to_owned()),
                _ => None,
            },
        };
        let c = self.vendor_common(
            ProberKind::Statusio,
            pos(block),
            raw.url.as_deref(),
            raw.components.as_deref(),
            raw.max_components.as_deref(),
            label,
        );
        let (c, page_id) = (c?, page_id?);
        Some(ProberOut {
            auth: c.auth.into_iter().collect(),
            ..ProberOut::new(ProberConfig::Statusio(statusio::StatusioConfig {
                base_url: c.base_url,
                page_id,
                components: c.components,
                max_components: c.max_components,
            }))
        })
    }

    pub(super) fn google_cloud(
        &mut self,
        block: &Spanned<Option<Box<RawGoogleCloud>>>,
        label: &str,
    ) -> Option<ProberOut> {
        let (url, products, components, max) = match &block.value {
            Some(raw) => (
                raw.url.as_deref(),
                raw.products.as_deref(),
                raw.components.as_deref(),
                raw.max_components.as_deref(),
            ),
            None => (None, None, None, None),
        };
        let mut names = Vec::new();
        let mut ok = true;
        for p in products.unwrap_or_default() {
            match self.string(Some(p), "products") {
                Field::Set(name, _) => names.push(name.trim().to_owned()),
                _ => ok = false,
            }
        }
        let c = self.vendor_common(
            ProberKind::GoogleCloud,
            pos(block),
            url,
            components,
            max,
            label,
        )?;
        ok.then(|| ProberOut {
            auth: c.auth.into_iter().collect(),
            ..ProberOut::new(ProberConfig::GoogleCloud(google_cloud::GoogleCloudConfig {
                base_url: c.base_url,
                products: names,
                components: c.components,
                max_components: c.max_components,
            }))
        })
    }

    /// A regex on body bytes.
    fn body_pattern(&mut self, s: &Spanned<String>, key: &str) -> Option<Pattern> {
        let source = self.text(s)?;
        match regex::bytes::Regex::new(&source) {
            Ok(re) => Some(Pattern(re)),
            Err(e) => {
                self.error(pos(s), bad_regex(&source, key, &e));
                None
            }
        }
    }

    pub(super) fn http(
        &mut self,
        block: &Spanned<Option<Box<RawHttp>>>,
        label: &str,
    ) -> Option<ProberOut> {
        let what = "the URL to check (like `https://api.example.com/healthz`)";
        let Some(raw) = &block.value else {
            self.error(pos(block), format!("{label}: `http` needs a `url`, {what}"));
            return None;
        };
        let url = self.required_url(
            raw.url.as_deref(),
            pos(block),
            ProberKind::Http,
            what,
            label,
        );
        let method = match &raw.method {
            None => Some(reqwest::Method::GET),
            Some(s) => self
                .text(s)
                .and_then(|text| match http_check::parse_method(&text) {
                    Ok(m) => Some(m),
                    Err(msg) => {
                        self.error(pos(s), msg);
                        None
                    }
                }),
        };
        let headers = self.headers(raw.headers.as_deref(), raw.headers_file.as_deref());
        let body = match (&raw.body, &raw.body_file) {
            (None, None) => Some(None),
            (Some(_), Some(f)) => {
                self.error(pos(f), "both `body` and `body_file` are given: keep one");
                None
            }
            (Some(s), None) => self.text(s).map(|t| Some(Secret::new(t))),
            // Sent as the file holds it (no line break dropped).
            (None, Some(f)) => self.body_file(f).map(|t| Some(Secret::new(t))),
        };
        let expect = match &raw.expect {
            None => Some(Expectations::default()),
            Some(e) => self.expect(e, method.as_ref()),
        };
        let follow_redirects = match &raw.follow_redirects {
            None => Some(true),
            Some(s) => self.flag(s, "follow_redirects"),
        };
        let (url, auth) = url?;
        Some(ProberOut {
            config: ProberConfig::Http(Box::new(HttpCheckConfig {
                url,
                method: method?,
                body: body?,
                expect: expect?,
                follow_redirects: follow_redirects?,
            })),
            auth: auth.into_iter().collect(),
            headers,
        })
    }

    fn expect(
        &mut self,
        raw: &Spanned<RawExpect>,
        method: Option<&reqwest::Method>,
    ) -> Option<Expectations> {
        let RawExpect {
            status,
            body_regex,
            body_not_regex,
            max_latency,
        } = &raw.value;
        let status = match status {
            None => Some(vec![StatusRange::SUCCESS]),
            Some(s) => self.status_ranges(s),
        };
        if method == Some(&reqwest::Method::HEAD) {
            for s in [body_regex, body_not_regex].into_iter().flatten() {
                self.error(
                    pos(s),
                    "a `HEAD` answer has no body, so a body regex can never match: use \
                     `method: GET` or remove the regex",
                );
            }
        }
        let body_regex = body_regex
            .as_ref()
            .map(|s| self.body_pattern(s, "expect.body_regex"));
        let body_not_regex = body_not_regex
            .as_ref()
            .map(|s| self.body_pattern(s, "expect.body_not_regex"));
        let max_latency = match self.duration(max_latency.as_deref(), "expect.max_latency") {
            Field::Unset => Some(None),
            Field::Set(d, _) => Some(Some(d)),
            Field::Invalid => None,
        };
        Some(Expectations {
            status: status?,
            body_regex: body_regex.map_or(Some(None), |p| p.map(Some))?,
            body_not_regex: body_not_regex.map_or(Some(None), |p| p.map(Some))?,
            max_latency: max_latency?,
        })
    }

    fn status_ranges(&mut self, raw: &Spanned<OneOrMany>) -> Option<Vec<StatusRange>> {
        let one;
        let items: &[Spanned<String>] = match &raw.value {
            OneOrMany::One(text) => {
                one = [Spanned::new(text.clone(), raw.referenced, raw.defined)];
                &one
            }
            OneOrMany::Many(items) => items,
        };
        if items.is_empty() {
            self.error(
                pos(raw),
                "`expect.status` is empty: list the codes that count as healthy, like \
                 `[200, 204]` or `[\"2xx\"]`",
            );
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            let Some(text) = self.text(item) else {
                ok = false;
                continue;
            };
            match StatusRange::parse(&text) {
                Ok(range) => out.push(range),
                Err(msg) => {
                    self.error(pos(item), format!("invalid `expect.status` entry: {msg}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    // -----------------------------------------------------------------------
    // json

    pub(super) fn json(
        &mut self,
        block: &Spanned<Option<Box<RawJson>>>,
        label: &str,
        static_labels: &[&str],
    ) -> Option<ProberOut> {
        let what = "the JSON API's URL (like `http://queue.internal/stats`)";
        let Some(raw) = &block.value else {
            self.error(
                pos(block),
                format!("{label}: `json` needs a `url`, {what}, and `metrics`"),
            );
            return None;
        };
        let url = self.required_url(
            raw.url.as_deref(),
            pos(block),
            ProberKind::Json,
            what,
            label,
        );
        let auth = match &raw.auth {
            None => Some(None),
            Some(a) => self.json_auth(a, label),
        };
        let headers = self.headers(raw.headers.as_deref(), raw.headers_file.as_deref());
        let rules = match &raw.metrics {
            None => {
                self.error(
                    pos(block),
                    format!(
                        "{label}: `json` needs `metrics`, a list of rules like `- {{ name: \
                         queue_depth, path: \"$.queues[*]\", value: \"$.depth\" }}`"
                    ),
                );
                None
            }
            Some(list) if list.value.is_empty() => {
                self.error(
                    pos(list),
                    format!("{label}: `metrics` is empty: define at least one rule"),
                );
                None
            }
            Some(list) => self.json_rules(&list.value, label, static_labels),
        };
        let (url, url_auth) = url?;
        Some(ProberOut {
            config: ProberConfig::Json(JsonConfig { url, rules: rules? }),
            auth: url_auth.into_iter().chain(auth?).collect(),
            headers,
        })
    }

    fn json_auth(&mut self, raw: &Spanned<RawAuth>, label: &str) -> Option<Option<Credentials>> {
        let RawAuth {
            basic,
            bearer_token,
            bearer_token_file,
        } = &raw.value;
        let bearer = self.bearer(
            bearer_token.as_deref(),
            bearer_token_file.as_deref(),
            "auth.",
            label,
        );
        let basic_auth = basic.as_ref().map(|b| self.basic_auth(b));
        match (basic_auth, bearer) {
            (None, Some(None)) => {
                self.error(
                    pos(raw),
                    "`auth` is empty: give `basic: { username, password }` or `bearer_token` \
                     (or their `*_file` forms), or remove `auth`",
                );
                None
            }
            (Some(_), Some(Some((_, p)))) => {
                self.error(
                    p,
                    format!("{label}: `auth` gives both `basic` and a bearer token: keep one"),
                );
                None
            }
            (Some(basic), Some(None)) => basic.map(Some),
            (None, Some(Some((token, p)))) => Some(Some(Credentials {
                value: token.wrapped(Wrap::Bearer),
                pos: p,
                how: "`auth.bearer_token`",
            })),
            (_, None) => None,
        }
    }

    fn basic_auth(&mut self, raw: &Spanned<RawBasicAuth>) -> Option<Credentials> {
        let RawBasicAuth {
            username,
            password,
            password_file,
        } = &raw.value;
        let user = match username {
            None => {
                self.error(
                    pos(raw),
                    "`auth.basic` needs a `username` and a `password` (or `password_file`)",
                );
                None
            }
            Some(s) => self.text(s).and_then(|u| {
                if u.contains(':') || !is_header_value(&u) {
                    self.error(
                        pos(s),
                        "`auth.basic.username` may not contain `:` or control characters",
                    );
                    None
                } else {
                    Some(u)
                }
            }),
        };
        let password = match (password, password_file) {
            (Some(_), Some(file)) => {
                self.error(
                    pos(file),
                    "`auth.basic` sets both `password` and `password_file`: keep one",
                );
                None
            }
            (None, None) => {
                self.error(
                    pos(raw),
                    "`auth.basic` needs a `password` or a `password_file`",
                );
                None
            }
            (Some(p), None) => self.text(p).map(Secret::new),
            (None, Some(file)) => self.secret_file(file, "auth.basic.password_file"),
        };
        let (user, password) = (user?, password?);
        Some(Credentials {
            value: password.wrapped(Wrap::Basic { user }),
            pos: pos(raw),
            how: "`auth.basic`",
        })
    }

    fn json_rules(
        &mut self,
        list: &[Spanned<RawJsonMetric>],
        label: &str,
        static_labels: &[&str],
    ) -> Option<Vec<JsonRule>> {
        let mut ok = true;
        let mut done: Vec<RuleOut> = Vec::with_capacity(list.len());
        for raw in list {
            let Some(rule) = self.json_rule(raw, static_labels) else {
                ok = false;
                continue;
            };
            if !self.json_collisions(&rule, &done, label) {
                ok = false;
            }
            done.push(rule);
        }
        ok.then(|| done.into_iter().map(|r| r.rule).collect())
    }

    /// Rules sharing a family must agree with each other (in this target)
    /// and on the type (in the whole config). True when they do.
    fn json_collisions(&mut self, new: &RuleOut, done: &[RuleOut], label: &str) -> bool {
        let rule = &new.rule;
        let family = rule.family();
        let target = label.to_owned();
        let mut ok = true;
        match self.json_families.get(family) {
            Some(seen) if seen.kind != rule.kind => {
                let message = format!(
                    "metric `{}` is a {} here but a {} at line {} ({}): one name has one type; \
                     rename one",
                    rule.name,
                    rule.kind.as_str(),
                    seen.kind.as_str(),
                    seen.pos.line,
                    seen.target
                );
                self.error(new.pos, message);
                ok = false;
            }
            Some(_) => {}
            None => {
                self.json_families.insert(
                    family.to_owned(),
                    FamilySeen {
                        kind: rule.kind,
                        pos: new.pos,
                        target,
                    },
                );
            }
        }
        let names =
            |r: &JsonRule| -> Vec<String> { r.labels.iter().map(|(n, _)| n.clone()).collect() };
        for other in done.iter().filter(|o| o.rule.family() == family) {
            let o = &other.rule;
            let line = other.pos.line;
            let problem = if o.kind != rule.kind {
                // Reported above, against the first definition.
                None
            } else if o.name != rule.name {
                Some(format!(
                    "metric `{}` and metric `{}` (line {line}) are both exposed as `{family}_total`: \
                     use one spelling",
                    rule.name, o.name
                ))
            } else if names(o) != names(rule) {
                Some(format!(
                    "metric `{}` has labels [{}] here but [{}] at line {line}: rules sharing a \
                     name must have the same label names",
                    rule.name,
                    names(rule).join(", "),
                    names(o).join(", ")
                ))
            } else if new.static_values.is_some() && new.static_values == other.static_values {
                Some(format!(
                    "metric `{}` with the same labels is already produced by the rule at line \
                     {line}: two rules would write the same series; give them a distinguishing \
                     label",
                    rule.name
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                self.error(new.pos, message);
                ok = false;
                break;
            }
        }
        ok
    }

    /// A JSONPath query, compiled.
    fn json_path(&mut self, s: &Spanned<String>, text: &str, key: &str) -> Option<JsonPath> {
        match JsonPath::parse(text) {
            Ok(path) => Some(path),
            Err(e) => {
                self.error(
                    pos(s),
                    format!(
                        "invalid JSONPath `{}` in `{key}` (at character {}): {}; write an RFC \
                         9535 query starting with `$`, like `$.queues[*]` or `$.depth`",
                        shown(text),
                        e.position() + 1,
                        e.message()
                    ),
                );
                None
            }
        }
    }

    fn json_rule(
        &mut self,
        raw: &Spanned<RawJsonMetric>,
        static_labels: &[&str],
    ) -> Option<RuleOut> {
        let at = pos(raw);
        let r = &raw.value;
        let kind = match &r.kind {
            None => Some(MetricKind::Gauge),
            Some(s) => self.text(s).and_then(|t| match t.trim() {
                "gauge" => Some(MetricKind::Gauge),
                "counter" => Some(MetricKind::Counter),
                other => {
                    self.error(
                        pos(s),
                        format!(
                            "metric `type` must be `gauge` or `counter`, got `{}`",
                            shown(other)
                        ),
                    );
                    None
                }
            }),
        };
        let name = match &r.name {
            None => {
                self.error(at, "metric rule has no `name`: add `name: <metric name>`");
                None
            }
            Some(s) => self.metric_name(s, kind),
        };
        let help = match &r.help {
            None => Some("Extracted from a JSON API by upstream-exporter.".to_owned()),
            Some(s) => self.text(s).map(|t| json::sanitize_help(&t)),
        };
        let path = match &r.path {
            None => {
                self.error(
                    at,
                    "metric rule has no `path`: add a JSONPath selecting the sampled values or \
                     objects, like `path: \"$.queues[*]\"`",
                );
                None
            }
            Some(s) => self.text(s).and_then(|t| self.json_path(s, &t, "path")),
        };
        let value = match &r.value {
            None => JsonPath::parse("$").ok(),
            Some(s) => self.text(s).and_then(|t| self.json_path(s, &t, "value")),
        };
        let labels = self.rule_labels(r, static_labels);
        let value_map = self.value_map(r);
        let (labels, static_values) = labels?;
        let name = name?;
        let rule = JsonRule {
            name,
            help: help?,
            kind: kind?,
            path: path?,
            value: value?,
            labels,
            value_map: value_map?,
        };
        Some(RuleOut {
            rule,
            pos: at,
            static_values,
        })
    }

    fn metric_name(&mut self, s: &Spanned<String>, kind: Option<MetricKind>) -> Option<String> {
        let name = self.text(s)?;
        let name = name.trim().to_owned();
        if !is_metric_name(&name) {
            self.error(
                pos(s),
                format!(
                    "`{}` is not a valid Prometheus metric name: use letters, digits, `_` and \
                     `:`, not starting with a digit",
                    shown(&name)
                ),
            );
            return None;
        }
        if let Some(prefix) = RESERVED_METRIC_PREFIXES
            .iter()
            .find(|p| name.starts_with(*p))
        {
            self.error(
                pos(s),
                format!(
                    "metric name `{name}` starts with `{prefix}`, which is reserved for the \
                     exporter's own metrics: rename it"
                ),
            );
            return None;
        }
        match kind {
            Some(MetricKind::Gauge) if name.ends_with("_total") => {
                self.error(
                    pos(s),
                    format!(
                        "gauge `{name}` ends in `_total`, which marks counters: drop the suffix \
                         or write `type: counter`"
                    ),
                );
                None
            }
            Some(MetricKind::Counter)
                if json::family_name(&name, MetricKind::Counter).is_empty() =>
            {
                self.error(pos(s), format!("`{name}` is not a valid metric name"));
                None
            }
            _ => Some(name),
        }
    }

    /// Labels sorted by name, and their values when all are static.
    #[allow(clippy::type_complexity)]
    fn rule_labels(
        &mut self,
        r: &RawJsonMetric,
        static_labels: &[&str],
    ) -> Option<(Vec<(String, LabelSource)>, Option<Vec<String>>)> {
        let Some(map) = &r.labels else {
            return Some((Vec::new(), Some(Vec::new())));
        };
        let mut out: Vec<(String, LabelSource)> = Vec::with_capacity(map.value.0.len());
        let mut ok = true;
        for (key, value) in &map.value.0 {
            let name = key.value.as_str();
            let problem = if !is_label_name(name) {
                Some(format!(
                    "`{}` is not a valid Prometheus label name: use letters, digits and `_`, \
                     not starting with a digit",
                    shown(name)
                ))
            } else if name.starts_with("__") {
                Some(format!(
                    "label name `{name}` is reserved (names starting with `__` are for \
                     Prometheus internals): rename it"
                ))
            } else if name == "target" {
                Some(
                    "label name `target` is reserved: the exporter sets it to the target's name; \
                     rename it"
                        .to_owned(),
                )
            } else if static_labels.contains(&name) {
                Some(format!(
                    "label `{name}` is also one of the target's static `labels`: a series cannot \
                     have it twice; rename one"
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                self.error(pos(key), message);
                ok = false;
                continue;
            }
            let Some(text) = self.text(value) else {
                ok = false;
                continue;
            };
            if let Some(hint) = foreign_path_syntax(&text) {
                self.error(
                    pos(value),
                    format!(
                        "label `{name}`: `{}` looks like a path in another exporter's syntax \
                         and would be exported as that text; {hint}",
                        text.escape_debug()
                    ),
                );
                ok = false;
                continue;
            }
            let source = if text.starts_with('$') {
                match self.json_path(value, &text, &format!("labels.{name}")) {
                    Some(path) => LabelSource::Path(path),
                    None => {
                        ok = false;
                        continue;
                    }
                }
            } else {
                LabelSource::Static(text)
            };
            out.push((name.to_owned(), source));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let static_values = out
            .iter()
            .map(|(_, s)| match s {
                LabelSource::Static(v) => Some(v.clone()),
                LabelSource::Path(_) => None,
            })
            .collect::<Option<Vec<String>>>();
        ok.then_some((out, static_values))
    }

    fn value_map(&mut self, r: &RawJsonMetric) -> Option<Vec<(String, f64)>> {
        let Some(map) = &r.value_map else {
            return Some(Vec::new());
        };
        let mut out = Vec::with_capacity(map.value.0.len());
        let mut ok = true;
        for (word, value) in &map.value.0 {
            let Some(text) = self.text(value) else {
                ok = false;
                continue;
            };
            match text.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => out.push((word.value.clone(), n)),
                _ => {
                    self.error(
                        pos(value),
                        format!(
                            "`value_map` value for `{}` must be a number, got `{}`",
                            shown(&word.value),
                            shown(&text)
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// A label value written as a path in json_exporter's (kubectl's)
/// `{.name}` syntax or relative as `@.name`: a hint to write it as RFC 9535
/// JSONPath on the match (`$.name`), or None for an ordinary value.
fn foreign_path_syntax(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if let Some(inner) = trimmed.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let inner = inner.trim();
        if inner.starts_with('.') || inner.starts_with('$') {
            let rest = inner.trim_start_matches('$').trim_start_matches('.');
            return Some(format!("write the path on the match as `$.{rest}`"));
        }
    }
    if let Some(rest) = trimmed.strip_prefix("@.") {
        return Some(format!(
            "paths on the match start with `$` here: write `$.{rest}`"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        assert!(is_metric_name("queue_depth"));
        assert!(is_metric_name("ns:queue_depth"));
        assert!(is_metric_name("_x"));
        assert!(!is_metric_name("1x"));
        assert!(!is_metric_name("a-b"));
        assert!(!is_metric_name(""));
    }
}
