//! A strict reader of the OpenMetrics text `/metrics` answers, and scrapes of a test app.

use std::collections::BTreeMap;

use crate::helpers::TestApp;

/// One sample line: metric name, labels, value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape: the declared families (name → type) and the samples.
#[derive(Debug, Default)]
pub struct Scrape {
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses `text`, failing on anything the exposition format does not allow: a sample of an
    /// undeclared family, a malformed label set or value, a missing or early `# EOF`.
    pub fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.last(), Some(&"# EOF"), "the text ends with # EOF");
        for line in &lines[..lines.len() - 1] {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').expect("# TYPE name type");
                assert!(["counter", "gauge", "histogram", "info", "unknown"].contains(&ty), "unknown type in {line:?}");
                scrape.types.insert(name.to_owned(), ty.to_owned());
            } else if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            } else {
                assert!(!line.starts_with('#'), "unexpected comment {line:?}");
                scrape.samples.push(sample(line, &scrape.types));
            }
        }
        scrape
    }

    /// The sum of the samples named `name` whose labels include every pair of `want`.
    pub fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.matching(name, want).map(|s| s.value).sum()
    }

    /// The samples named `name` whose labels include every pair of `want`.
    pub fn matching<'a>(&'a self, name: &'a str, want: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            s.name == name && want.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
    }

    /// Every value label `key` takes in samples named `name`.
    pub fn label_values(&self, name: &str, key: &str) -> Vec<String> {
        self.samples.iter().filter(|s| s.name == name).filter_map(|s| s.labels.get(key).cloned()).collect()
    }
}

fn sample(line: &str, types: &BTreeMap<String, String>) -> Sample {
    let (head, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in {line:?}"));
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => {
            (name, labels(rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line:?}"))))
        }
        None => (head, BTreeMap::new()),
    };
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad name in {line:?}");
    let family = ["_total", "_bucket", "_count", "_sum", "_created"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix).filter(|f| types.contains_key(*f)))
        .unwrap_or(name);
    assert!(types.contains_key(family), "sample of an undeclared family: {line:?}");
    Sample { name: name.to_owned(), labels, value }
}

/// `a="x",b="y"` (values escaped with `\\`, `\"`, `\n`).
fn labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label set {text:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?} in {text:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {text:?}"),
            }
        };
        assert!(out.insert(key.to_owned(), value).is_none(), "repeated label {key} in {text:?}");
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    out
}

/// `/metrics` on the main listener with `token`.
pub async fn scrape_with(app: &TestApp, token: &str) -> Scrape {
    let r = app.api.get(app.url("/metrics")).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "scrape with the metrics token");
    let ty = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ty.starts_with("application/openmetrics-text"), "{ty}");
    Scrape::parse(&r.text().await.unwrap())
}
