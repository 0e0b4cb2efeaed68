//! Geolocation on databases the tests write themselves (maxminddb-writer),
//! in MaxMind's nested schema and in the flat DB-IP lite schema of
//! ip-location-db. The addresses are global ones (documentation ranges are
//! never looked up); nothing is sent anywhere.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use badguys::geo::{is_global, Geo};
use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;
use serde::Serialize;

/// A day in 2024, as a build date.
pub const BUILT: u64 = 1_717_200_000;

fn db(kind: &str, built: u64) -> Database {
    let mut d = Database::default();
    d.metadata.ip_version = IpVersion::V6;
    d.metadata.database_type = kind.into();
    d.metadata.binary_format_major_version = 2;
    d.metadata.build_epoch = built;
    d.metadata.languages = vec!["en".into()];
    d
}

/// `81.2.69.0/24` → `::5102:4500/120`: an IPv6 tree holds IPv4 under ::/96.
fn net(s: &str) -> IpAddrWithMask {
    let (a, len) = s.split_once('/').unwrap();
    let len: u8 = len.parse().unwrap();
    match a.parse::<IpAddr>().unwrap() {
        IpAddr::V4(v4) => IpAddrWithMask::new(IpAddr::V6(v4.to_ipv6_compatible()), len + 96),
        v6 => IpAddrWithMask::new(v6, len),
    }
}

fn save(d: &Database, path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    d.write_to(std::io::BufWriter::new(f)).unwrap();
}

#[derive(Serialize)]
struct Iso {
    iso_code: String,
}
#[derive(Serialize)]
struct Names {
    names: BTreeMap<String, String>,
}
#[derive(Serialize)]
struct Loc {
    latitude: f64,
    longitude: f64,
}
#[derive(Serialize)]
struct MmCity {
    country: Iso,
    city: Names,
    location: Loc,
}
#[derive(Serialize)]
struct MmAsn {
    autonomous_system_number: u32,
    autonomous_system_organization: String,
}
#[derive(Serialize)]
struct DbipCity {
    country_code: String,
    city: String,
    latitude: f32,
    longitude: f32,
}

/// The places the test databases know: (network, country, city, lat, lon, asn, org).
pub const PLACES: [(&str, &str, &str, f64, f64, u32, &str); 5] = [
    ("81.2.69.0/24", "GB", "London", 51.5, -0.1, 20712, "Andrews & Arnold"),
    ("1.1.1.0/24", "AU", "Sydney", -33.9, 151.2, 13335, "Cloudflare"),
    ("2a00:1450::/32", "DE", "Berlin", 52.5, 13.4, 15169, "Google"),
    ("45.0.0.0/16", "BR", "São Paulo", -23.5, -46.6, 64500, "<script>alert(1)</script> Net"),
    // A documentation range with an answer: it must never be used.
    ("203.0.113.0/24", "ZZ", "Nowhere", 0.0, 0.0, 64511, "doc"),
];

/// GeoLite2-style City and ASN databases in `dir`.
pub fn write_maxmind(dir: &Path, built: u64) -> Vec<PathBuf> {
    let mut city = db("GeoLite2-City", built);
    let mut asn = db("GeoLite2-ASN", built);
    for (n, cc, name, lat, lon, a, org) in PLACES {
        let names = BTreeMap::from([("en".to_string(), name.to_string()), ("de".to_string(), format!("{name}-de"))]);
        let v = MmCity {
            country: Iso { iso_code: cc.into() },
            city: Names { names },
            location: Loc { latitude: lat, longitude: lon },
        };
        let r = city.insert_value(v).unwrap();
        city.insert_node(net(n), r);
        let r = asn
            .insert_value(MmAsn { autonomous_system_number: a, autonomous_system_organization: org.into() })
            .unwrap();
        asn.insert_node(net(n), r);
    }
    let paths = vec![dir.join("GeoLite2-City.mmdb"), dir.join("GeoLite2-ASN.mmdb")];
    save(&city, &paths[0]);
    save(&asn, &paths[1]);
    paths
}

/// ip-location-db style DB-IP lite City and ASN databases in `dir`.
pub fn write_dbip(dir: &Path, built: u64) -> Vec<PathBuf> {
    let mut city = db("dbip-city-lite", built);
    let mut asn = db("dbip-asn-lite", built);
    for (n, cc, name, lat, lon, a, org) in PLACES {
        let v = DbipCity { country_code: cc.into(), city: name.into(), latitude: lat as f32, longitude: lon as f32 };
        let r = city.insert_value(v).unwrap();
        city.insert_node(net(n), r);
        let r = asn
            .insert_value(MmAsn { autonomous_system_number: a, autonomous_system_organization: org.into() })
            .unwrap();
        asn.insert_node(net(n), r);
    }
    let paths = vec![dir.join("dbip-city-ipv6.mmdb"), dir.join("dbip-asn-ipv6.mmdb")];
    save(&city, &paths[0]);
    save(&asn, &paths[1]);
    paths
}

fn check(paths: &[PathBuf], licence: &str) {
    let g = Geo::open(paths).unwrap();
    let k = g.kinds();
    assert!(k.country && k.city && k.asn, "{k:?}");
    assert!(g.dbs[0].kinds.city && !g.dbs[0].kinds.asn, "the city database is told from its fields");
    assert!(g.dbs[1].kinds.asn && !g.dbs[1].kinds.country, "the ASN database is told from its fields");
    let p = g.lookup("81.2.69.142".parse().unwrap());
    assert_eq!(p.country.as_deref(), Some("GB"));
    assert_eq!(p.city.as_deref(), Some("London"));
    let (lat, lon) = p.coords.unwrap();
    assert!((lat - 51.5).abs() < 0.01 && (lon + 0.1).abs() < 0.01, "{lat} {lon}");
    assert_eq!(p.network().as_deref(), Some("AS20712 Andrews & Arnold"));
    let p = g.lookup("2a00:1450:4001::1".parse().unwrap());
    assert_eq!((p.country.as_deref(), p.asn), (Some("DE"), Some(15169)));
    let p = g.lookup("::ffff:1.1.1.1".parse().unwrap());
    assert_eq!(p.country.as_deref(), Some("AU"), "a mapped address is looked up as IPv4");
    // Known to the database, but documentation space: never looked up.
    let doc: IpAddr = "203.0.113.9".parse().unwrap();
    assert!(!is_global(doc));
    assert_eq!(g.lookup(doc), Default::default());
    // Not in the database.
    assert_eq!(g.lookup("9.9.9.9".parse().unwrap()), Default::default());
    let now = BUILT as i64 + 10 * 86_400;
    let a = g.attributions(now);
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|x| x.licence.contains(licence) && x.built == BUILT as i64 && !x.stale), "{a:?}");
    assert!(g.attributions(BUILT as i64 + 91 * 86_400).iter().all(|x| x.stale), "over 90 days old warns");
}

#[test]
fn maxmind_schema() {
    let d = tempfile::tempdir().unwrap();
    check(&write_maxmind(d.path(), BUILT), "MaxMind");
}

#[test]
fn dbip_flat_schema() {
    let d = tempfile::tempdir().unwrap();
    check(&write_dbip(d.path(), BUILT), "CC BY 4.0");
}

#[test]
fn search_finds_mmdb_files_and_skips_junk() {
    let d = tempfile::tempdir().unwrap();
    write_dbip(d.path(), BUILT);
    std::fs::write(d.path().join("broken.mmdb"), b"not a database").unwrap();
    std::fs::write(d.path().join("README"), b"x").unwrap();
    let g = Geo::search([d.path()]);
    assert_eq!(g.dbs.len(), 2);
    assert!(Geo::search([d.path().join("missing").as_path()]).is_empty());
    let err = Geo::open(&[d.path().join("broken.mmdb")]).err().expect("a named broken file is an error");
    assert!(err.to_string().contains("broken.mmdb"), "{err}");
}
