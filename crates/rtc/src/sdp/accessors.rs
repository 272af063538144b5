//! Typed read access to the attributes of one section (session or media level).
//!
//! Values were validated when the description was parsed, so the accessors skip (rather
//! than report) a value that does not parse: that only happens to hand-built descriptions.

use super::attributes::{Direction, Fingerprint, Group, Msid, Setup};
use super::candidate::Candidate;
use super::description::{Attribute, Line};
use super::rtp_attributes::{ExtMap, Fmtp, RtcpFb, RtpMap, Ssrc, SsrcGroup};
use super::simulcast::{Rid, Simulcast};

/// The attribute lines of one section, with typed accessors.
#[derive(Debug, Clone, Copy)]
pub struct Attrs<'a>(pub &'a [Line]);

impl<'a> Attrs<'a> {
    /// Every attribute, in order.
    pub fn iter(self) -> impl Iterator<Item = &'a Attribute> {
        self.0.iter().filter_map(|l| match l {
            Line::Attr(a) => Some(a),
            Line::Field(..) => None,
        })
    }

    /// The values of every `a=<name>:<value>` line named `name`.
    pub fn values(self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.iter()
            .filter(move |a| a.name == name)
            .filter_map(|a| a.value.as_deref())
    }

    /// The value of the first `a=<name>:<value>`.
    pub fn value(self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|a| a.name == name)
            .and_then(|a| a.value.as_deref())
    }

    /// Whether an attribute named `name` is present (flag or not).
    pub fn has(self, name: &str) -> bool {
        self.iter().any(|a| a.name == name)
    }

    /// `a=mid` (RFC 5888 §4).
    pub fn mid(self) -> Option<&'a str> {
        self.value("mid")
    }

    /// The BUNDLE groups (`a=group:BUNDLE ...`, RFC 8843 §7.1).
    pub fn bundle_groups(self) -> impl Iterator<Item = Group> + 'a {
        self.values("group")
            .filter_map(|v| Group::parse(v).ok())
            .filter(|g| g.semantics.eq_ignore_ascii_case("BUNDLE"))
    }

    /// The direction attribute, if any (the caller falls back to the session's, then to
    /// `sendrecv`, RFC 8866 §6.7).
    pub fn direction(self) -> Option<Direction> {
        self.iter()
            .find_map(|a| Direction::from_name(&a.name).filter(|_| a.value.is_none()))
    }

    /// `a=rtcp-mux` (RFC 5761 §5.1.3).
    pub fn rtcp_mux(self) -> bool {
        self.has("rtcp-mux")
    }

    /// `a=ice-ufrag` (RFC 8839 §5.4).
    pub fn ice_ufrag(self) -> Option<&'a str> {
        self.value("ice-ufrag")
    }

    /// `a=ice-pwd` (RFC 8839 §5.4).
    pub fn ice_pwd(self) -> Option<&'a str> {
        self.value("ice-pwd")
    }

    /// The `a=ice-options` tokens (`trickle`, `ice2`, ...), comma or space separated.
    pub fn ice_options(self) -> impl Iterator<Item = &'a str> {
        self.values("ice-options")
            .flat_map(|v| v.split([' ', ',']))
            .filter(|t| !t.is_empty())
    }

    /// `a=ice-lite` (RFC 8839 §5.3).
    pub fn ice_lite(self) -> bool {
        self.has("ice-lite")
    }

    /// Every `a=fingerprint` (RFC 8122 §5; several are allowed).
    pub fn fingerprints(self) -> impl Iterator<Item = Fingerprint> + 'a {
        self.values("fingerprint")
            .filter_map(|v| Fingerprint::parse(v).ok())
    }

    /// `a=setup` (RFC 4145 §4).
    pub fn setup(self) -> Option<Setup> {
        self.value("setup").and_then(|v| Setup::parse(v).ok())
    }

    /// Every `a=rtpmap`.
    pub fn rtpmaps(self) -> impl Iterator<Item = RtpMap> + 'a {
        self.values("rtpmap").filter_map(|v| RtpMap::parse(v).ok())
    }

    /// The `a=rtpmap` of payload type `pt`.
    pub fn rtpmap(self, pt: u8) -> Option<RtpMap> {
        self.rtpmaps().find(|r| r.pt == pt)
    }

    /// The `a=fmtp` of payload type `pt`.
    pub fn fmtp(self, pt: u8) -> Option<Fmtp> {
        self.values("fmtp")
            .filter_map(|v| Fmtp::parse(v).ok())
            .find(|f| f.pt == pt)
    }

    /// The `a=rtcp-fb` lines that apply to `pt` (its own and the `*` ones).
    pub fn rtcp_fbs(self, pt: u8) -> impl Iterator<Item = RtcpFb> + 'a {
        self.values("rtcp-fb")
            .filter_map(|v| RtcpFb::parse(v).ok())
            .filter(move |fb| fb.pt.is_none_or(|p| p == pt))
    }

    /// Every `a=extmap`.
    pub fn extmaps(self) -> impl Iterator<Item = ExtMap> + 'a {
        self.values("extmap").filter_map(|v| ExtMap::parse(v).ok())
    }

    /// `a=msid` (RFC 8830).
    pub fn msid(self) -> Option<Msid> {
        self.value("msid").and_then(|v| Msid::parse(v).ok())
    }

    /// Every `a=ssrc` line.
    pub fn ssrcs(self) -> impl Iterator<Item = Ssrc> + 'a {
        self.values("ssrc").filter_map(|v| Ssrc::parse(v).ok())
    }

    /// Every `a=ssrc-group`.
    pub fn ssrc_groups(self) -> impl Iterator<Item = SsrcGroup> + 'a {
        self.values("ssrc-group")
            .filter_map(|v| SsrcGroup::parse(v).ok())
    }

    /// Every `a=rid` (RFC 8851).
    pub fn rids(self) -> impl Iterator<Item = Rid> + 'a {
        self.values("rid").filter_map(|v| Rid::parse(v).ok())
    }

    /// `a=simulcast` (RFC 8853; one per section).
    pub fn simulcast(self) -> Option<Simulcast> {
        self.value("simulcast")
            .and_then(|v| Simulcast::parse(v).ok())
    }

    /// Every `a=candidate`.
    pub fn candidates(self) -> impl Iterator<Item = Candidate> + 'a {
        self.values("candidate")
            .filter_map(|v| Candidate::parse(v).ok())
    }

    /// `a=end-of-candidates` (RFC 8838 §8.2).
    pub fn end_of_candidates(self) -> bool {
        self.has("end-of-candidates")
    }
}
