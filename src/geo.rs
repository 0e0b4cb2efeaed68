//! Offline geolocation from `.mmdb` files (MaxMind DB format): which
//! databases there are (`--geo FILE`, or a search of the usual places), what
//! each one holds (country, city with coordinates, ASN and organisation:
//! detected from the fields of its records, not from its name), lookups that
//! merge what every database knows about an address, and the attribution
//! each database's licence asks the views to show.
//!
//! Two schemas are read: MaxMind's nested one (GeoLite2: `country.iso_code`,
//! `city.names.en`, `location.latitude`, `autonomous_system_number`,
//! `autonomous_system_organization`) and the flat one of the DB-IP lite files
//! as repackaged by ip-location-db (`country_code`, `city`, `latitude` and
//! `longitude` as 32-bit floats, `autonomous_system_number`, …).
//!
//! Only global addresses are looked up ([`is_global`]): some databases
//! answer with a country for private or documentation ranges. Nothing here
//! is stored: the views geolocate when they are made.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use maxminddb::Reader;
use serde::Deserialize;

use crate::Error;

/// Where databases are looked for when no `--geo` is given: OpenBSD's
/// `dbip-city-lite` and `dbip-asn-lite` packages, then geoipupdate's
/// directories.
pub const DEFAULT_DIRS: [&str; 3] = ["/var/db/dbip", "/var/lib/GeoIP", "/usr/share/GeoIP"];

/// A database's build date older than this gets a warning.
pub const STALE_DAYS: i64 = 90;

/// What to say when no database was found.
pub const HOW_TO_INSTALL: &str = "no geolocation database found (looked in /var/db/dbip, /var/lib/GeoIP, \
/usr/share/GeoIP): countries and networks are not shown. Install one: on OpenBSD `pkg_add dbip-city-lite \
dbip-asn-lite`; elsewhere the free DB-IP lite .mmdb files (db-ip.com, CC BY 4.0) or MaxMind GeoLite2 through \
geoipupdate; or name a file with --geo FILE";

/// What a database can answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kinds {
    pub country: bool,
    /// City name or coordinates.
    pub city: bool,
    /// Autonomous system number or organisation.
    pub asn: bool,
}

impl Kinds {
    /// `country+city+asn`
    pub fn names(&self) -> String {
        let mut v = Vec::new();
        for (on, name) in [(self.country, "country"), (self.city, "city"), (self.asn, "asn")] {
            if on {
                v.push(name);
            }
        }
        if v.is_empty() {
            "unknown".into()
        } else {
            v.join("+")
        }
    }
}

/// What the databases know about one address; every field may be missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Place {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    pub city: Option<String>,
    /// Latitude and longitude in degrees.
    pub coords: Option<(f64, f64)>,
    pub asn: Option<u32>,
    pub org: Option<String>,
}

impl Place {
    fn merge(&mut self, o: Place) {
        self.country = self.country.take().or(o.country);
        self.city = self.city.take().or(o.city);
        self.coords = self.coords.take().or(o.coords);
        self.asn = self.asn.take().or(o.asn);
        self.org = self.org.take().or(o.org);
    }

    /// `AS64500 Example Net`, or what there is of it.
    pub fn network(&self) -> Option<String> {
        match (self.asn, &self.org) {
            (Some(a), Some(o)) => Some(format!("AS{a} {o}")),
            (Some(a), None) => Some(format!("AS{a}")),
            (None, Some(o)) => Some(o.clone()),
            (None, None) => None,
        }
    }
}

/// What a view must say about a database it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribution {
    pub path: PathBuf,
    /// The `database_type` of its metadata.
    pub database_type: String,
    pub kinds: Kinds,
    /// Build time (seconds since the epoch).
    pub built: i64,
    /// The attribution its licence requires.
    pub licence: String,
    /// Built more than [`STALE_DAYS`] before now.
    pub stale: bool,
}

/// One open database.
pub struct Db {
    pub path: PathBuf,
    pub kinds: Kinds,
    reader: Reader<Vec<u8>>,
}

/// The databases in use; possibly none.
#[derive(Default)]
pub struct Geo {
    pub dbs: Vec<Db>,
}

// Both schemas in one struct: every field optional, unknown fields ignored.
#[derive(Deserialize, Default)]
struct Raw {
    // MaxMind
    country: Option<IsoCode>,
    registered_country: Option<IsoCode>,
    location: Option<Location>,
    // DB-IP flat (`city` is a plain string there, a map of names in MaxMind's)
    city: Option<City>,
    country_code: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    // Both (MaxMind ASN, DB-IP asn), and the shorter names some repackagings use.
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
    as_number: Option<u32>,
    as_organization: Option<String>,
}

#[derive(Deserialize)]
struct IsoCode {
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum City {
    Name(String),
    Names { names: Option<BTreeMap<String, String>> },
}

impl Raw {
    fn place(self) -> Place {
        let iso = |c: Option<IsoCode>| c.and_then(|c| c.iso_code);
        let country = iso(self.country).or(self.country_code).or(iso(self.registered_country));
        let country = country.filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()));
        let city = match self.city {
            Some(City::Name(n)) => Some(n),
            Some(City::Names { names: Some(mut n) }) => n.remove("en").or_else(|| n.into_values().next()),
            _ => None,
        };
        let coords = match (self.location, self.latitude, self.longitude) {
            (Some(Location { latitude: Some(a), longitude: Some(o) }), _, _) | (_, Some(a), Some(o)) => Some((a, o)),
            _ => None,
        };
        let coords = coords.filter(|(a, o)| a.is_finite() && o.is_finite() && a.abs() <= 90.0 && o.abs() <= 180.0);
        Place {
            country: country.map(|c| c.to_ascii_uppercase()),
            city: city.filter(|c| !c.is_empty()),
            coords,
            asn: self.autonomous_system_number.or(self.as_number),
            org: self.autonomous_system_organization.or(self.as_organization).filter(|o| !o.is_empty()),
        }
    }
}

impl Db {
    /// Opens one database and finds out what it holds from its first records.
    pub fn open(path: &Path) -> Result<Db, Error> {
        let err = |msg: String| Error::Geo { path: path.to_path_buf(), msg };
        let reader = Reader::open_readfile(path).map_err(|e| err(format!("not a readable .mmdb database: {e}")))?;
        let mut db = Db { path: path.to_path_buf(), kinds: Kinds::default(), reader };
        db.kinds = db.probe();
        Ok(db)
    }

    /// The union of the fields of its first records; the metadata's
    /// `database_type` when the records say nothing.
    fn probe(&self) -> Kinds {
        let mut k = Kinds::default();
        let nets = ["0.0.0.0/0", "::/0"];
        for net in nets.iter().filter_map(|n| n.parse::<ipnetwork::IpNetwork>().ok()) {
            if net.is_ipv6() && self.reader.metadata.ip_version != 6 {
                continue;
            }
            let Ok(items) = self.reader.within::<Raw>(net) else { continue };
            for item in items.take(256).flatten() {
                let p = item.info.place();
                k.country |= p.country.is_some();
                k.city |= p.city.is_some() || p.coords.is_some();
                k.asn |= p.asn.is_some() || p.org.is_some();
            }
        }
        if k == Kinds::default() {
            let t = self.reader.metadata.database_type.to_ascii_lowercase();
            k.city = t.contains("city");
            k.asn = t.contains("asn") || t.contains("isp");
            k.country = t.contains("country") || k.city;
        }
        k
    }

    pub fn lookup(&self, ip: IpAddr) -> Place {
        // A v4 address in an IPv6-only database: maxminddb walks the ::/96 subtree.
        match self.reader.lookup::<Raw>(ip) {
            Ok(raw) => raw.place(),
            Err(_) => Place::default(),
        }
    }

    pub fn attribution(&self, now: i64) -> Attribution {
        let m = &self.reader.metadata;
        let built = i64::try_from(m.build_epoch).unwrap_or(i64::MAX);
        Attribution {
            path: self.path.clone(),
            database_type: m.database_type.clone(),
            kinds: self.kinds,
            built,
            licence: licence(&m.database_type, &m.description, &self.path),
            stale: now.saturating_sub(built) > STALE_DAYS * 86_400,
        }
    }
}

/// The attribution a database's licence asks for, from its metadata.
fn licence(kind: &str, description: &BTreeMap<String, String>, path: &Path) -> String {
    let desc = description.get("en").cloned().unwrap_or_default();
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let all = format!("{kind} {desc} {name}").to_ascii_lowercase();
    if all.contains("db-ip") || all.contains("dbip") {
        "IP Geolocation by DB-IP (db-ip.com), licensed CC BY 4.0".into()
    } else if all.contains("geolite") || all.contains("maxmind") {
        "This product includes GeoLite data created by MaxMind, available from maxmind.com (GeoLite EULA)".into()
    } else if !desc.is_empty() {
        format!("{desc} (see the database's licence)")
    } else {
        "licence unknown: see the database's terms".into()
    }
}

impl Geo {
    /// Opens the databases named (`--geo`), or when none is named, every
    /// `.mmdb` in [`DEFAULT_DIRS`] (one that fails to open there is skipped
    /// with a warning; a named one that fails is an error).
    pub fn open(named: &[PathBuf]) -> Result<Geo, Error> {
        if !named.is_empty() {
            return Ok(Geo { dbs: named.iter().map(|p| Db::open(p)).collect::<Result<_, _>>()? });
        }
        Ok(Geo::search(DEFAULT_DIRS.iter().map(Path::new)))
    }

    /// Every readable `.mmdb` file in `dirs`, in name order.
    pub fn search<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Geo {
        let mut dbs = Vec::new();
        for dir in dirs {
            let Ok(rd) = std::fs::read_dir(dir) else { continue };
            let mut files: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "mmdb") && p.is_file())
                .collect();
            files.sort();
            for f in files {
                match Db::open(&f) {
                    Ok(db) => dbs.push(db),
                    Err(e) => tracing::warn!("{e}: skipped"),
                }
            }
        }
        Geo { dbs }
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// What can be answered, over all databases.
    pub fn kinds(&self) -> Kinds {
        self.dbs.iter().fold(Kinds::default(), |a, d| Kinds {
            country: a.country || d.kinds.country,
            city: a.city || d.kinds.city,
            asn: a.asn || d.kinds.asn,
        })
    }

    /// What the databases know about `ip`; nothing for a non-global address.
    pub fn lookup(&self, ip: IpAddr) -> Place {
        let ip = canonical(ip);
        let mut p = Place::default();
        if !is_global(ip) {
            return p;
        }
        for db in &self.dbs {
            p.merge(db.lookup(ip));
        }
        p
    }

    pub fn attributions(&self, now: i64) -> Vec<Attribution> {
        self.dbs.iter().map(|d| d.attribution(now)).collect()
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is a global unicast address: not loopback, private,
/// shared (CGNAT), link-local, documentation, benchmarking, reserved,
/// multicast, unique-local, or a special-purpose range. IPv4-mapped
/// addresses are judged as the IPv4 address they carry.
pub fn is_global(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => global4(a),
        IpAddr::V6(a) => global6(a),
    }
}

fn in4(a: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a) & m == u32::from(Ipv4Addr::from(net)) & m
}

fn global4(a: Ipv4Addr) -> bool {
    const NOT: [([u8; 4], u32); 15] = [
        ([0, 0, 0, 0], 8),       // "this network"
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
        ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, and the broadcast address
    ];
    !NOT.iter().any(|&(n, l)| in4(a, n, l))
}

fn in6(a: Ipv6Addr, net: u128, len: u32) -> bool {
    let m = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    u128::from(a) & m == net & m
}

fn global6(a: Ipv6Addr) -> bool {
    // Only 2000::/3 is allocated as global unicast; inside it, these are not global.
    const NOT: [(u128, u32); 5] = [
        (0x2001_0000 << 96, 23), // IETF protocol assignments (Teredo, benchmarking, ORCHID)
        (0x2001_0db8 << 96, 32), // documentation
        (0x2002_0000 << 96, 16), // 6to4: the IPv4 address inside decides, not looked up
        (0x3fff_0000 << 96, 20), // documentation (RFC 9637)
        (0x5f00_0000 << 96, 16), // SRv6 SIDs (RFC 9602)
    ];
    in6(a, 0x2000 << 112, 3) && !NOT.iter().any(|&(n, l)| in6(a, n, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_global_addresses() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.1.1",
            "192.0.2.7",
            "198.51.100.7",
            "203.0.113.7",
            "198.18.0.1",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "2002:c000:0204::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::1",
            "100::1",
            "fec0::1",
        ] {
            assert!(!is_global(ip(s)), "{s} must not be looked up");
        }
        for s in ["1.1.1.1", "8.8.8.8", "81.2.69.142", "100.63.255.255", "172.32.0.1", "2a00:1450::1", "::ffff:8.8.8.8"]
        {
            assert!(is_global(ip(s)), "{s} is global");
        }
    }

    #[test]
    fn non_global_is_never_looked_up() {
        let g = Geo::default();
        assert_eq!(g.lookup(ip("10.0.0.1")), Place::default());
        assert!(g.is_empty());
    }

    #[test]
    fn licence_by_metadata() {
        let none = BTreeMap::new();
        assert!(licence("DBIP-City-Lite", &none, Path::new("x.mmdb")).contains("DB-IP"));
        assert!(licence("whatever", &none, Path::new("/var/db/dbip/dbip-asn-lite.mmdb")).contains("CC BY 4.0"));
        assert!(licence("GeoLite2-City", &none, Path::new("x.mmdb")).contains("MaxMind"));
        assert!(licence("x", &none, Path::new("x.mmdb")).contains("unknown"));
    }
}
