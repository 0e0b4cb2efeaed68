//! Property tests on the line parser: no panic on any bytes, and no user
//! name or client-written INFO can make it report an address other than the
//! real client's.

use std::net::IpAddr;

use badguys::parse::{RuleSet, Scanner, What};
use proptest::prelude::*;

fn events(input: &[u8]) -> Vec<(What, IpAddr, u32)> {
    let mut sc = Scanner::new(RuleSet::all());
    let mut out = Vec::new();
    sc.scan(input, &mut |ev| out.push((ev.what, ev.ip, ev.count)));
    out
}

/// Pieces an attacker would put in a user name (syslog escapes control
/// characters, so no newline).
fn hostile_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" from 198.51.100.66 port 22".to_string()),
        Just(" from 2001:db8::66".to_string()),
        Just(" port 22".to_string()),
        Just(" port ".to_string()),
        Just(" from ".to_string()),
        Just(" [preauth]".to_string()),
        Just(" ssh2".to_string()),
        Just("Connection reset by 198.51.100.67 port 1".to_string()),
        Just("invalid user ".to_string()),
        Just("root ".to_string()),
        Just("authenticating user ".to_string()),
        Just(" ruser= rhost=198.51.100.66  user=".to_string()),
        Just(" not allowed because listed in DenyUsers".to_string()),
        Just(" 198.51.100.66 port 22".to_string()),
        Just(" 2001:db8::66 port 22".to_string()),
        Just(" (198.51.100.66)".to_string()),
        Just("@198.51.100.66".to_string()),
        Just("\\033[31m".to_string()),
        Just("]".to_string()),
        Just(" ".to_string()),
        "[a-zA-Z0-9._-]{0,12}",
        "[ -~]{0,20}",
    ]
}

/// A user name as sshd logs it: auth2.c input_userauth_request cuts it at
/// its first `:`, auth.c prints at most 100 bytes.
fn user_name() -> impl Strategy<Value = String> {
    proptest::collection::vec(hostile_piece(), 0..6)
        .prop_map(|v| v.concat())
        .prop_map(|s| s.split(':').next().unwrap_or_default().chars().take(100).collect())
}

/// Pieces of the text after `ssh2: ` that the client writes (a
/// certificate's key ID, hostbased client user and host), built to look
/// like a tail naming someone else.
fn info_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" from 198.51.100.66 port 22 ssh2".to_string()),
        Just(" from 2001:db8::66 port 22 ssh2".to_string()),
        Just(" from 198.51.100.66 port 22 ssh2: ".to_string()),
        Just("x for root".to_string()),
        Just(" for invalid user y".to_string()),
        Just(" ssh2: ".to_string()),
        Just(" ssh2".to_string()),
        Just(" port 22".to_string()),
        Just(": ".to_string()),
        Just("\"".to_string()),
        Just(", client host \"".to_string()),
        "[ -~]{0,24}",
    ]
}

fn info() -> impl Strategy<Value = String> {
    proptest::collection::vec(info_piece(), 0..6).prop_map(|v| v.concat())
}

fn client() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..=255).prop_map(|d| IpAddr::from([192, 0, 2, d])),
        (0u16..=0xffff).prop_map(|d| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, d])),
    ]
}

/// sshd messages that carry a user name before the address.
fn message_with_user() -> impl Strategy<Value = (String, IpAddr)> {
    (0usize..18, user_name(), client(), 1u16..=65535, any::<bool>()).prop_map(|(shape, user, ip, port, preauth)| {
        let p = if preauth { " [preauth]" } else { "" };
        let m = match shape {
            6 => format!("Failed keyboard-interactive/pam for invalid user {user} from {ip} port {port} ssh2"),
            7 => format!("Failed publickey for {user} from {ip} port {port} ssh2: RSA SHA256:k"),
            8 => format!("Failed none for invalid user {user} from {ip} port {port} ssh2"),
            9 => format!("error: PAM: Authentication failure for illegal user {user} from {ip}"),
            10 => format!(
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}"
            ),
            11 => format!("PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}"),
            12 => format!("User {user} from {ip} not allowed because not listed in AllowUsers"),
            13 => format!("Connection closed by invalid user {user} {ip} port {port}{p}"),
            14 => format!("Disconnected from authenticating user {user} {ip} port {port}{p}"),
            15 => format!(
                "Disconnecting invalid user {user} {ip} port {port}: Change of username or service not allowed: ({user},ssh-connection) -> (x,ssh-connection){p}"
            ),
            16 => format!("ssh_dispatch_run_fatal: Connection from invalid user {user} {ip} port {port}: incomplete message{p}"),
            17 => format!("Connection reset by authenticating user {user} {ip} port {port}{p}"),
            0 => format!("Invalid user {user} from {ip} port {port}"),
            1 => format!("Invalid user {user} from {ip}"),
            2 => format!("Failed password for {user} from {ip} port {port} ssh2"),
            3 => format!("Failed password for invalid user {user} from {ip} port {port} ssh2"),
            4 => format!(
                "error: maximum authentication attempts exceeded for invalid user {user} from {ip} port {port} ssh2{p}"
            ),
            _ => format!("Accepted password for {user} from {ip} port {port} ssh2"),
        };
        (m, ip)
    })
}

/// auth_log lines whose INFO the client writes, and whether the message
/// must give an event (a success and max-auth always name their sender; a
/// failure may log the client's own method, and a line that reads two ways
/// names no one).
fn message_with_info() -> impl Strategy<Value = (String, IpAddr, bool)> {
    (0usize..8, user_name(), info(), client(), 1u16..=65535).prop_map(|(shape, user, info, ip, port)| {
        let tail = format!("from {ip} port {port} ssh2: {info}");
        let fp = "SHA256:Vq3c9uJ8yT1kPzR4mN6bXw2sL0aHdF5gE7iKoQ1rUtY";
        match shape {
            0 => (format!("Accepted publickey for {user} {tail}"), ip, true),
            1 => (format!("Accepted hostbased for {user} from {ip} port {port} ssh2: ED25519 {fp}, client user \"{info}\", client host \"{info}\""), ip, true),
            2 => (format!("Accepted publickey for {user} from {ip} port {port} ssh2: ED25519-CERT {fp} ID {info} (serial 1) CA ED25519 {fp}"), ip, true),
            3 => (format!("error: maximum authentication attempts exceeded for invalid user {user} {tail} [preauth]"), ip, true),
            5 => (format!("Received disconnect from {ip} port {port}:11: {info} [preauth]"), ip, true),
            6 => (format!("Disconnecting invalid user {user} {ip} port {port}: Change of username or service not allowed: ({user},ssh-connection) -> ({info},ssh-connection) [preauth]"), ip, true),
            7 => (format!("Failed hostbased for invalid user {user} from {ip} port {port} ssh2: ED25519 {fp}, client user \"{info}\", client host \"{info}\""), ip, false),
            _ => (format!("Failed password for invalid user {user} {tail}"), ip, false),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn info_never_names_another_address((msg, ip, always) in message_with_info(), pid in 1u32..99999) {
        let line = format!("Oct  1 14:42:51 gw sshd[{pid}]: {msg}\n");
        let got = events(line.as_bytes());
        prop_assert!(got.len() <= 1, "line: {}", line);
        if always {
            prop_assert_eq!(got.len(), 1, "line: {}", line);
        }
        for (_, got, _) in got {
            prop_assert_eq!(got, ip, "line: {}", line);
        }
    }

    #[test]
    fn no_panic_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = events(&data);
    }

    #[test]
    fn no_panic_on_mangled_sshd_lines(
        (msg, _) in message_with_user(),
        cut in 0usize..200,
        junk in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut line = format!("Oct  1 14:42:51 gw sshd[42]: {msg}").into_bytes();
        let cut = cut.min(line.len());
        line.truncate(cut);
        line.extend_from_slice(&junk);
        line.push(b'\n');
        let _ = events(&line);
    }

    #[test]
    fn a_user_name_never_names_another_address((msg, ip) in message_with_user(), pid in 1u32..99999) {
        let line = format!("Oct  1 14:42:51 gw sshd[{pid}]: {msg}\n");
        for (_, got, _) in events(line.as_bytes()) {
            prop_assert_eq!(got, ip, "line: {}", line);
        }
    }

    #[test]
    fn every_reported_address_is_its_own_lines_client(
        lines in proptest::collection::vec(message_with_user(), 1..8),
    ) {
        // The user names carry other addresses (198.51.100.66, 2001:db8::66,
        // "Connection reset by …"): being somewhere in the text is not
        // enough. Events come in line order, at most one per line, each with
        // the client address of the line it came from.
        let mut text = String::new();
        for (i, (m, _)) in lines.iter().enumerate() {
            text.push_str(&format!("2024-10-01T14:42:51.123456+00:00 web1 sshd-session[{i}]: {m}\n"));
        }
        let got = events(text.as_bytes());
        prop_assert!(got.len() <= lines.len(), "{} events from {} lines: {}", got.len(), lines.len(), text);
        let mut next = 0;
        for (_, ip, _) in &got {
            prop_assert!(text.contains(&format!(" {ip}")) || text.contains(&format!("={ip}")), "{} not in {}", ip, text);
            match lines[next..].iter().position(|(_, client)| client == ip) {
                Some(k) => next += k + 1,
                None => prop_assert!(false, "{} is no line's client (in order) in {}", ip, text),
            }
        }
    }

    #[test]
    fn tcp_wrappers_takes_the_last_parenthesis(user in user_name(), ip in client()) {
        let line = format!("Oct  1 14:42:51 gw sshd[7]: refused connect from {user}@host.example ({ip})\n");
        let got = events(line.as_bytes());
        prop_assert_eq!(got.len(), 1, "line: {}", line);
        prop_assert_eq!(got[0].1, ip, "line: {}", line);
    }

    #[test]
    fn kex_reset_needs_its_pair(ip in client(), pid in 1u32..1000, other in 1u32..1000) {
        let reset = format!("Oct  1 14:42:51 gw sshd[{pid}]: Connection reset by {ip} port 4242\n");
        prop_assert!(events(reset.as_bytes()).is_empty());
        let kex = format!("Oct  1 14:42:51 gw sshd[{other}]: error: kex_exchange_identification: read: Connection reset by peer\n");
        let got = events(format!("{kex}{reset}").as_bytes());
        if other == pid {
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(got[0].1, ip);
        } else {
            prop_assert!(got.is_empty());
        }
    }
}
