//! A minimal MaxMind DB writer: enough of the format (v2.0, 24-bit records,
//! an IPv6 tree with IPv4 under `::/96`) to build small City databases from
//! JSON, for `phs plugins test` fixtures and the test suite.
//!
//! Layout: the search tree (6 bytes per node: left and right records), 16
//! zero bytes, the data section, then `\xAB\xCD\xEFMaxMind.com` and the
//! metadata map. A record below the node count points at a node, equal to it
//! means "not found", above it points into the data section.

use std::net::IpAddr;

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
enum Record {
    Empty,
    Node(usize),
    Data(usize),
}

/// One network and its record: `("1.2.3.0/24" or "1.2.3.4", City JSON)`.
pub type Entry = (String, Value);

/// Builds an MMDB file holding `entries`. Later entries win where networks overlap.
pub fn write(entries: &[Entry]) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    for (network, value) in entries {
        let (bits, len) = parse_network(network)?;
        let offset = data.len();
        encode(value, &mut data)?;
        insert(&mut nodes, bits, len, offset);
    }
    let node_count = nodes.len();
    if node_count + 16 + data.len() >= 1 << 24 {
        return Err("too much data for a 24-bit-record database".into());
    }
    let mut out = Vec::with_capacity(node_count * 6 + 16 + data.len() + 256);
    for node in &nodes {
        for r in node {
            let v = match *r {
                Record::Empty => node_count,
                Record::Node(n) => n,
                Record::Data(off) => node_count + 16 + off,
            };
            out.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let metadata = json!({
        "binary_format_major_version": 2,
        "binary_format_minor_version": 0,
        "build_epoch": chrono::Utc::now().timestamp(),
        "database_type": "GeoIP2-City",
        "description": {"en": "made by phs for tests and fixtures"},
        "ip_version": 6,
        "languages": ["en"],
        "node_count": node_count,
        "record_size": 24,
    });
    encode(&metadata, &mut out)?;
    Ok(out)
}

/// The network's 128 bits (IPv4 mapped under ::/96) and its prefix length.
fn parse_network(network: &str) -> Result<(u128, u32), String> {
    let (addr, len) = match network.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u32>().map_err(|_| format!("`{network}`: bad prefix length"))?)),
        None => (network, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| format!("`{network}` is not an IP address or network"))?;
    let (bits, len) = match addr {
        IpAddr::V4(v4) => (u32::from(v4) as u128, 96 + len.unwrap_or(32).min(32)),
        IpAddr::V6(v6) => (u128::from(v6), len.unwrap_or(128).min(128)),
    };
    if len == 0 || (matches!(addr, IpAddr::V4(_)) && len == 96) {
        return Err(format!("`{network}`: a prefix length of 0 would cover everything"));
    }
    Ok((bits, len))
}

fn insert(nodes: &mut Vec<[Record; 2]>, bits: u128, len: u32, offset: usize) {
    let mut node = 0;
    for i in 0..len {
        let bit = ((bits >> (127 - i)) & 1) as usize;
        if i == len - 1 {
            nodes[node][bit] = Record::Data(offset);
            return;
        }
        node = match nodes[node][bit] {
            Record::Node(n) => n,
            // A more specific network inside an existing one: the rest keeps the outer record.
            fill @ (Record::Empty | Record::Data(_)) => {
                nodes.push([fill; 2]);
                let n = nodes.len() - 1;
                nodes[node][bit] = Record::Node(n);
                n
            }
        };
    }
}

// Data section types.
const STRING: u8 = 2;
const DOUBLE: u8 = 3;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const INT32: u8 = 8;
const UINT64: u8 = 9;
const ARRAY: u8 = 11;
const BOOLEAN: u8 = 14;

fn control(kind: u8, size: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let (size_bits, extra): (u8, Vec<u8>) = match size {
        0..29 => (size as u8, vec![]),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        65_821..16_843_037 => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
        _ => return Err(format!("a value of {size} elements or bytes is too large")),
    };
    if kind <= 7 {
        out.push(kind << 5 | size_bits);
    } else {
        out.push(size_bits);
        out.push(kind - 7);
    }
    out.extend_from_slice(&extra);
    Ok(())
}

fn unsigned(kind: u8, n: u64, out: &mut Vec<u8>) -> Result<(), String> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(kind, 8 - skip, out)?;
    out.extend_from_slice(&bytes[skip..]);
    Ok(())
}

fn encode(v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Null => return Err("null has no MaxMind DB encoding; leave the key out".into()),
        Value::Bool(b) => control(BOOLEAN, *b as usize, out)?,
        Value::String(s) => {
            control(STRING, s.len(), out)?;
            out.extend_from_slice(s.as_bytes());
        }
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) if u <= u32::MAX as u64 => unsigned(UINT32, u, out)?,
            (Some(u), _) => unsigned(UINT64, u, out)?,
            (None, Some(i)) if i >= i32::MIN as i64 => {
                control(INT32, 4, out)?;
                out.extend_from_slice(&(i as i32).to_be_bytes());
            }
            _ => {
                control(DOUBLE, 8, out)?;
                out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_be_bytes());
            }
        },
        Value::Array(a) => {
            control(ARRAY, a.len(), out)?;
            for x in a {
                encode(x, out)?;
            }
        }
        Value::Object(o) => {
            control(MAP, o.len(), out)?;
            for (k, x) in o {
                control(STRING, k.len(), out)?;
                out.extend_from_slice(k.as_bytes());
                encode(x, out)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::geoip::GeoIp;

    #[test]
    fn written_databases_read_back() {
        let city = json!({
            "city": {"geoname_id": 2643743, "names": {"en": "London"}},
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "continent": {"code": "EU", "names": {"en": "Europe"}},
            "location": {"latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London", "accuracy_radius": 5},
            "postal": {"code": "EC2V"},
            "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}]
        });
        let other = json!({"country": {"iso_code": "DE", "names": {"en": "Germany"}}});
        let v6 = json!({"country": {"iso_code": "JP", "names": {"en": "Japan"}}});
        let bytes = write(&[
            ("81.2.69.0/24".into(), other.clone()),
            ("81.2.69.142".into(), city.clone()),
            ("2001:db8::/32".into(), v6.clone()),
        ])
        .unwrap();
        let db = GeoIp::from_bytes(bytes, "test").unwrap();
        assert_eq!(db.locate("81.2.69.142").unwrap().unwrap(), city);
        assert_eq!(db.locate("81.2.69.7").unwrap().unwrap(), other, "the /24 around it");
        assert_eq!(db.locate("2001:db8::1").unwrap().unwrap(), v6);
        assert_eq!(db.locate("8.8.8.8").unwrap(), None);
        assert!(db.locate("not an ip").unwrap_err().contains("not an IP address"));
        assert!(write(&[("1.2.3.4/0".into(), other)]).is_err());
    }
}
