//! A real OpenLDAP `slapd` on 127.0.0.1 for the directory sign-in tests: an old-style `slapd.conf`, an
//! `mdb` database loaded from LDIF with `slapadd`, plain LDAP (with StartTLS) and LDAPS on free ports, and
//! a server certificate for 127.0.0.1/localhost issued by a CA the test makes. Skipped where slapd is
//! missing (`external::require`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::external::require;

pub const BASE_DN: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
pub const ROOT_PASSWORD: &str = "root-secret";
pub const SERVICE_DN: &str = "cn=proxdesk,ou=services,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "service-secret-9";

/// The people and groups most tests use. Passwords are stored as given (slapd compares clear text
/// when no `{SCHEME}` prefix is present); `twin` is two entries in two branches.
pub const PEOPLE: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=staff,dc=example,dc=org
objectClass: organizationalUnit
ou: staff

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: ou=services,dc=example,dc=org
objectClass: organizationalUnit
ou: services

dn: cn=proxdesk,ou=services,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: proxdesk
userPassword: service-secret-9

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
mail: alice@example.org
userPassword: alice-Secret-1

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
sn: Builder
mail: bob@example.org
userPassword: bob-Secret-2

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol Danvers
sn: Danvers
mail: carol@example.org
userPassword: carol-Secret-3

dn: uid=twin,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: twin
cn: Twin One
sn: One
userPassword: twin-Secret-4

dn: uid=twin,ou=staff,dc=example,dc=org
objectClass: inetOrgPerson
uid: twin
cn: Twin Two
sn: Two
userPassword: twin-Secret-4

dn: cn=ops,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: ops
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=students,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: students
member: uid=alice,ou=people,dc=example,dc=org
member: uid=bob,ou=people,dc=example,dc=org
";

/// A running slapd; killed on drop.
pub struct Slapd {
    pub ldap_port: u16,
    pub ldaps_port: u16,
    /// LDAPS on 127.0.0.2, a name the server certificate does not hold.
    pub wrong_name_port: u16,
    _dir: tempfile::TempDir,
    /// PEM of the CA that issued the server certificate.
    pub ca_file: PathBuf,
    /// PEM of a CA that has nothing to do with this server.
    pub other_ca_file: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A CA certificate and its issuer (to sign server certificates with).
fn make_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

impl Slapd {
    /// Starts slapd with [`PEOPLE`].
    pub fn start() -> Option<Slapd> {
        Self::start_with(PEOPLE)
    }

    /// Starts slapd with `ldif` loaded (its base must be [`BASE_DN`]).
    pub fn start_with(ldif: &str) -> Option<Slapd> {
        let slapd = require("slapd", &["/usr/sbin/slapd"])?;
        let slapadd = require("slapadd", &["/usr/sbin/slapadd"])?;
        require("ldapmodify", &["/usr/bin/ldapmodify"])?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();

        let (ca_pem, ca) = make_ca("proxdesk test directory CA");
        let (other_ca_pem, _) = make_ca("some other CA");
        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let server = params.signed_by(&server_key, &ca).unwrap();
        std::fs::write(d.join("ca.pem"), &ca_pem).unwrap();
        std::fs::write(d.join("other-ca.pem"), &other_ca_pem).unwrap();
        std::fs::write(d.join("server.pem"), server.pem()).unwrap();
        std::fs::write(d.join("server.key"), server_key.serialize_pem()).unwrap();

        // Authenticated users (the service account, a person who bound) read; anonymous clients only
        // bind. Nobody reads passwords.
        let config = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {d}/slapd.pid\n\
             argsfile {d}/slapd.args\n\
             TLSCertificateFile {d}/server.pem\n\
             TLSCertificateKeyFile {d}/server.key\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by users read by * none\n\
             database mdb\n\
             maxsize 16777216\n\
             suffix \"{BASE_DN}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PASSWORD}\n\
             directory {d}/db\n",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), config).unwrap();
        std::fs::write(d.join("data.ldif"), ldif).unwrap();
        let out = Command::new(&slapadd)
            .args(["-q", "-f"])
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif"))
            .output()
            .unwrap();
        assert!(out.status.success(), "slapadd failed: {}", String::from_utf8_lossy(&out.stderr));

        let (ldap_port, ldaps_port, wrong_name_port) = (free_port(), free_port(), free_port());
        let urls = format!(
            "ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/ ldaps://127.0.0.2:{wrong_name_port}/"
        );
        let child = Command::new(&slapd)
            .args(["-d", "0", "-h", &urls, "-f"])
            .arg(d.join("slapd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd starts");
        let mut this = Slapd {
            ldap_port,
            ldaps_port,
            wrong_name_port,
            ca_file: d.join("ca.pem"),
            other_ca_file: d.join("other-ca.pem"),
            _dir: dir,
            child: Some(child),
        };
        let until = Instant::now() + Duration::from_secs(15);
        for (host, port) in [("127.0.0.1", ldap_port), ("127.0.0.1", ldaps_port), ("127.0.0.2", wrong_name_port)] {
            while std::net::TcpStream::connect((host, port)).is_err() {
                if let Some(status) = this.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("slapd exited ({status}) before listening on {port}");
                }
                assert!(Instant::now() < until, "slapd did not listen on {port}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Some(this)
    }

    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// Changes the directory as its root with `ldapmodify` (`changetype` records).
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new("/usr/bin/ldapmodify")
            .args(["-x", "-H", &self.ldap_url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "ldapmodify failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Kills slapd (the directory goes down; its ports refuse connections).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
