//! The first bytes of a TLS connection, read as HAProxy's `req.ssl_sni` and
//! `req.ssl_hello_type` read them: only the first record, never decrypted, so that a TCP
//! frontend can route TLS by the name the client asks for without terminating it.

/// What the bytes received so far say about a field of the ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello<T> {
    /// The field, final.
    Found(T),
    /// Not a TLS handshake, or a hello without the field: waiting longer will not change it.
    Absent,
    /// Too few bytes yet to tell.
    Short,
}

/// The TLS record type of a handshake.
const HANDSHAKE: u8 = 0x16;
/// The handshake type of a ClientHello.
const CLIENT_HELLO: u8 = 0x01;

/// The handshake message type of the first record (1 for a ClientHello), as
/// `req.ssl_hello_type` reads it: any SSL/TLS record type, once the message header is in.
pub fn hello_type(buf: &[u8]) -> Hello<u8> {
    match buf.first() {
        None => return Hello::Short,
        Some(&t) if !matches!(t, 0x14..=0x17 | 0xff) => return Hello::Absent,
        Some(_) => {}
    }
    if buf.len() < 9 {
        return Hello::Short;
    }
    let rec_len = usize::from(buf[3]) << 8 | usize::from(buf[4]);
    if buf[1] < 3 || rec_len < 4 {
        return Hello::Absent;
    }
    // HAProxy waits for the whole handshake message before answering
    let hs_len = usize::from(buf[6]) << 16 | usize::from(buf[7]) << 8 | usize::from(buf[8]);
    if buf.len() < 9 + hs_len {
        return Hello::Short;
    }
    Hello::Found(buf[5])
}

/// A reader over the first record that tells "needs more bytes" (within the record) from "not
/// there" (past the record's or a field's declared end).
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Where the current structure ends, as declared by its length fields.
    end: usize,
}

/// Why a read stopped.
enum Stop {
    Short,
    Absent,
}

impl<'a> Cursor<'a> {
    /// `n` bytes, advancing.
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let to = self.pos + n;
        if to > self.end {
            return Err(Stop::Absent);
        }
        if to > self.buf.len() {
            return Err(Stop::Short);
        }
        let s = &self.buf[self.pos..to];
        self.pos = to;
        Ok(s)
    }

    fn u8(&mut self) -> Result<usize, Stop> {
        Ok(usize::from(self.take(1)?[0]))
    }

    fn u16(&mut self) -> Result<usize, Stop> {
        let b = self.take(2)?;
        Ok(usize::from(b[0]) << 8 | usize::from(b[1]))
    }

    fn u24(&mut self) -> Result<usize, Stop> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// Narrows the end to `len` bytes from here (a length-prefixed structure), never past the
    /// outer one.
    fn within(&mut self, len: usize) -> Result<(), Stop> {
        let to = self.pos + len;
        if to > self.end {
            return Err(Stop::Absent);
        }
        self.end = to;
        Ok(())
    }
}

/// The server name (SNI, `host_name` type) the ClientHello of the first record asks for, as
/// `req.ssl_sni`.
pub fn sni(buf: &[u8]) -> Hello<&[u8]> {
    let mut c = Cursor {
        buf,
        pos: 0,
        end: usize::MAX,
    };
    match read_sni(&mut c) {
        Ok(Some(name)) => Hello::Found(name),
        Ok(None) | Err(Stop::Absent) => Hello::Absent,
        Err(Stop::Short) => Hello::Short,
    }
}

fn read_sni<'a>(c: &mut Cursor<'a>) -> Result<Option<&'a [u8]>, Stop> {
    if c.u8()? != usize::from(HANDSHAKE) {
        return Ok(None);
    }
    if c.u8()? < 3 {
        return Ok(None); // SSLv2-era record version
    }
    c.take(1)?;
    let rec_len = c.u16()?;
    // HAProxy's minimum: a hello header and every fixed field of a ClientHello
    if rec_len < 1 + 3 + 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + 2 {
        return Ok(None);
    }
    c.within(rec_len)?;
    if c.u8()? != usize::from(CLIENT_HELLO) {
        return Ok(None);
    }
    let hs_len = c.u24()?;
    if hs_len < 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + 2 {
        return Ok(None);
    }
    // not bounded by the first record: a hello split over records still shows the fields
    // the first one holds, as HAProxy reads it
    c.end = c.pos + hs_len;
    c.take(2 + 32)?; // client version, random
    let sid = c.u8()?;
    if sid > 32 {
        return Ok(None);
    }
    c.take(sid)?;
    let suites = c.u16()?;
    c.take(suites)?;
    let comp = c.u8()?;
    c.take(comp)?;
    let ext_len = c.u16()?;
    c.within(ext_len)?;
    while c.pos < c.end {
        let kind = c.u16()?;
        let len = c.u16()?;
        if kind != 0 {
            c.take(len)?;
            continue;
        }
        // server_name: a list of (type, length, name); HAProxy reads the first entry
        let outer = c.end;
        c.within(len)?;
        let list = c.u16()?;
        c.within(list)?;
        let name_type = c.u8()?;
        let name_len = c.u16()?;
        let name = c.take(name_len)?;
        c.end = outer;
        return Ok((name_type == 0 && !name.is_empty()).then_some(name));
    }
    Ok(None)
}

/// A TLS record holding a ClientHello that asks for `name`, with a few extensions before the
/// SNI as browsers send them: what the rules' tests and benchmarks feed the parser.
#[doc(hidden)]
pub fn sample_client_hello(name: &str) -> Vec<u8> {
    let n = name.as_bytes();
    let be16 = |v: usize| (v as u16).to_be_bytes();
    let mut ext = Vec::new();
    // ec_point_formats, then extended_master_secret, renegotiation_info, session_ticket
    for (kind, body) in [
        (0x000b_u16, &[1u8, 0][..]),
        (0x0017, &[]),
        (0xff01, &[0]),
        (0x0023, &[]),
    ] {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&be16(body.len()));
        ext.extend_from_slice(body);
    }
    ext.extend_from_slice(&[0, 0]); // server_name
    ext.extend_from_slice(&be16(n.len() + 5));
    ext.extend_from_slice(&be16(n.len() + 3));
    ext.push(0); // host_name
    ext.extend_from_slice(&be16(n.len()));
    ext.extend_from_slice(n);
    let mut body = vec![3, 3]; // TLS 1.2 in the hello, as TLS 1.3 clients write it
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(32); // session id
    body.extend_from_slice(&[0x33; 32]);
    body.extend_from_slice(&be16(4)); // two suites
    body.extend_from_slice(&[0x13, 0x01, 0x13, 0x02]);
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&be16(ext.len()));
    body.extend_from_slice(&ext);
    let mut rec = vec![HANDSHAKE, 3, 1];
    rec.extend_from_slice(&be16(body.len() + 4));
    rec.push(CLIENT_HELLO);
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(&body);
    rec
}
