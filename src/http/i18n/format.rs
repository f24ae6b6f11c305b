//! Numbers, sizes, durations and plurals as each language writes them.

use super::lookup;

/// The plural category of `n` in `lang`: French counts 0 and 1 as singular, English and Italian only 1.
pub fn plural_is_one(lang: &str, n: i64) -> bool {
    match lang {
        "fr" => n == 0 || n == 1 || n == -1,
        _ => n == 1 || n == -1,
    }
}

/// `key.one` or `key.other` by `n`'s plural category, with `{n}` and the other placeholders filled.
pub fn plural<S: AsRef<str>>(lang: &str, key: &str, n: i64, params: &[(&str, S)]) -> String {
    let form = if plural_is_one(lang, n) { "one" } else { "other" };
    let mut text = lookup(lang, &format!("{key}.{form}")).to_owned();
    text = text.replace("{n}", &number(lang, n as f64, 0));
    for (name, value) in params {
        text = text.replace(&format!("{{{name}}}"), value.as_ref());
    }
    text
}

fn separators(lang: &str) -> (char, &'static str) {
    match lang {
        // French groups thousands with a narrow no-break space, Italian with a dot.
        "fr" => (',', "\u{202f}"),
        "it" => (',', "."),
        _ => ('.', ","),
    }
}

/// `1234.5` as `1,234.5` (en), `1 234,5` (fr) or `1.234,5` (it), with `decimals` digits after the point.
pub fn number(lang: &str, value: f64, decimals: usize) -> String {
    let (point, group) = separators(lang);
    let text = format!("{:.*}", decimals, value.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push_str(group);
        }
        grouped.push(c);
    }
    let sign = if value < 0.0 && text.chars().any(|c| c != '0' && c != '.') { "-" } else { "" };
    if frac.is_empty() { format!("{sign}{grouped}") } else { format!("{sign}{grouped}{point}{frac}") }
}

/// A number with up to one decimal, the decimal left out when it is zero.
fn short(lang: &str, value: f64) -> String {
    if (value - value.round()).abs() < 0.05 { number(lang, value.round(), 0) } else { number(lang, value, 1) }
}

/// A size given in MiB: `512 MiB`, `2 GiB`, `1.5 TiB` (French: Mio, Gio, Tio).
pub fn size_mib(lang: &str, mib: f64) -> String {
    let units: [&str; 3] = if lang == "fr" { ["Mio", "Gio", "Tio"] } else { ["MiB", "GiB", "TiB"] };
    let (value, unit) = if mib >= 1024.0 * 1024.0 {
        (mib / (1024.0 * 1024.0), units[2])
    } else if mib >= 1024.0 {
        (mib / 1024.0, units[1])
    } else {
        (mib, units[0])
    };
    format!("{}\u{a0}{unit}", short(lang, value))
}

/// The units of a duration in `lang`: days, hours, minutes (as the uptime counter in the page uses them).
pub fn duration_units(lang: &str) -> &'static str {
    match lang {
        "fr" => "j h min",
        "it" => "g h min",
        _ => "d h min",
    }
}

/// A duration in seconds, to the two largest units that matter: `3 d 4 h`, `2 h 5 min`, `1 min 5 s`,
/// `4.2 s`, `850 ms`.
pub fn duration(lang: &str, secs: f64) -> String {
    let units: Vec<&str> = duration_units(lang).split(' ').collect();
    let nb = "\u{a0}";
    if secs < 1.0 {
        return format!("{}{nb}ms", number(lang, (secs * 1000.0).round(), 0));
    }
    if secs < 60.0 {
        return format!("{}{nb}s", short(lang, secs));
    }
    let whole = secs.round() as u64;
    let (d, h, m, s) = (whole / 86_400, whole % 86_400 / 3600, whole % 3600 / 60, whole % 60);
    match (d, h) {
        (0, 0) if s > 0 => format!("{m}{nb}{} {s}{nb}s", units[2]),
        (0, 0) => format!("{m}{nb}{}", units[2]),
        (0, _) => format!("{h}{nb}{} {m}{nb}{}", units[1], units[2]),
        _ => format!("{d}{nb}{} {h}{nb}{}", units[0], units[1]),
    }
}

/// An uptime the way the page's counter shows it: minutes at least, no seconds.
pub fn uptime(lang: &str, secs: u64) -> String {
    let units: Vec<&str> = duration_units(lang).split(' ').collect();
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m} {}", units[2]),
        (0, _) => format!("{h} {} {m} {}", units[1], units[2]),
        _ => format!("{d} {} {h} {}", units[0], units[1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_use_each_languages_separators() {
        assert_eq!(number("en", 1234567.891, 2), "1,234,567.89");
        assert_eq!(number("fr", 1234.5, 1), "1\u{202f}234,5");
        assert_eq!(number("it", 1234.5, 1), "1.234,5");
        assert_eq!(number("en", 12.0, 0), "12");
        assert_eq!(number("en", -1500.0, 0), "-1,500");
    }

    #[test]
    fn sizes_pick_the_largest_whole_unit() {
        assert_eq!(size_mib("en", 512.0), "512\u{a0}MiB");
        assert_eq!(size_mib("en", 2048.0), "2\u{a0}GiB");
        assert_eq!(size_mib("fr", 1536.0), "1,5\u{a0}Gio");
        assert_eq!(size_mib("it", 3.0 * 1024.0 * 1024.0), "3\u{a0}TiB");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("en", 0.001), "1\u{a0}ms");
        assert_eq!(duration("fr", 4.26), "4,3\u{a0}s");
        assert_eq!(duration("en", 65.0), "1\u{a0}min 5\u{a0}s");
        assert_eq!(duration("en", 7500.0), "2\u{a0}h 5\u{a0}min");
        assert_eq!(duration("fr", 3.0 * 86_400.0 + 4.0 * 3600.0), "3\u{a0}j 4\u{a0}h");
        assert_eq!(uptime("it", 90_061), "1 g 1 h");
        assert_eq!(uptime("en", 59), "0 min");
    }

    #[test]
    fn french_zero_and_one_are_singular() {
        assert!(plural_is_one("fr", 0) && plural_is_one("fr", 1) && !plural_is_one("fr", 2));
        assert!(!plural_is_one("en", 0) && plural_is_one("en", 1));
        assert!(!plural_is_one("it", 0) && plural_is_one("it", 1));
    }
}
