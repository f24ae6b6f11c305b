//! Why a console socket closes, as the browser learns it: a WebSocket close code in the application
//! range 4000–4999 and a short reason text. The page maps each code to a translated message
//! (`console.close.<name>`); the audit log records the same name.

use crate::integrations::pve::PveError;

/// Every way a console ends or is refused once the user is known to be allowed to see the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    // Refused before a session starts (4000–4099).
    /// The machine is not running: nothing was asked of PVE.
    MachineStopped,
    /// The machine has no container any more (deleted, being deleted, or lost).
    MachineUnavailable,
    /// No Proxmox VE cluster is configured.
    NotConfigured,
    /// A terminal was asked of a VM without a serial port (`serial0`): it has only its screen.
    NoTerminal,
    /// The person already has the most console sessions open the per-user cap allows: nothing was
    /// asked of PVE.
    TooManyConsoles,
    /// PVE refused `vncproxy`/`termproxy`: proxdesk's identity lacks `VM.Console`.
    PvePermission,
    /// PVE refused: the guest's config is locked (backup, migration…).
    PveLocked,
    /// PVE refused: the guest does not exist (there).
    PveNotFound,
    /// PVE refused: it could not get a lock or a worker in time.
    PveBusy,
    /// PVE refused proxdesk's credentials.
    PveCredentials,
    /// PVE could not be reached to ask for a console.
    PveUnreachable,
    /// PVE refused for another reason.
    PveRefused,
    /// The console websocket to PVE failed, or the console login on it did.
    RelayFailed,
    /// Opening the console on PVE took too long.
    RelayTimeout,
    // Ends of a running session (4100–4199).
    /// The console on the guest ended (PVE closed the socket in order).
    GuestClosed,
    /// The connection to PVE broke.
    PveClosed,
    /// Nothing moved for the idle timeout.
    IdleTimeout,
    /// The maximum session length was reached.
    MaxLength,
    /// A newer session of the same console replaced this one.
    TakenOver,
    /// proxdesk is shutting down.
    ShuttingDown,
    /// The machine was deleted or lost meanwhile.
    MachineGone,
    /// The machine stopped meanwhile.
    MachineStoppedMeanwhile,
    /// Proxmox VE no longer grants the person `VM.Console` on the guest.
    AccessWithdrawn,
}

impl CloseReason {
    /// Every reason, for the page's table of messages.
    pub const ALL: [CloseReason; 23] = [
        CloseReason::MachineStopped,
        CloseReason::MachineUnavailable,
        CloseReason::NotConfigured,
        CloseReason::NoTerminal,
        CloseReason::TooManyConsoles,
        CloseReason::PvePermission,
        CloseReason::PveLocked,
        CloseReason::PveNotFound,
        CloseReason::PveBusy,
        CloseReason::PveCredentials,
        CloseReason::PveUnreachable,
        CloseReason::PveRefused,
        CloseReason::RelayFailed,
        CloseReason::RelayTimeout,
        CloseReason::GuestClosed,
        CloseReason::PveClosed,
        CloseReason::IdleTimeout,
        CloseReason::MaxLength,
        CloseReason::TakenOver,
        CloseReason::ShuttingDown,
        CloseReason::MachineGone,
        CloseReason::MachineStoppedMeanwhile,
        CloseReason::AccessWithdrawn,
    ];

    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        use CloseReason::*;
        match self {
            MachineStopped => 4000,
            MachineUnavailable => 4001,
            NotConfigured => 4002,
            NoTerminal => 4003,
            TooManyConsoles => 4004,
            PvePermission => 4010,
            PveLocked => 4011,
            PveNotFound => 4012,
            PveBusy => 4013,
            PveCredentials => 4014,
            PveUnreachable => 4015,
            PveRefused => 4019,
            RelayFailed => 4020,
            RelayTimeout => 4021,
            GuestClosed => 4100,
            PveClosed => 4101,
            IdleTimeout => 4102,
            MaxLength => 4103,
            TakenOver => 4104,
            ShuttingDown => 4105,
            MachineGone => 4106,
            MachineStoppedMeanwhile => 4107,
            AccessWithdrawn => 4108,
        }
    }

    /// The stable name: audit `reason`, and the message key `console.close.<name>`.
    pub fn name(self) -> &'static str {
        use CloseReason::*;
        match self {
            MachineStopped => "machine_stopped",
            MachineUnavailable => "machine_unavailable",
            NotConfigured => "not_configured",
            NoTerminal => "no_terminal",
            TooManyConsoles => "too_many_consoles",
            PvePermission => "pve_permission",
            PveLocked => "pve_locked",
            PveNotFound => "pve_not_found",
            PveBusy => "pve_busy",
            PveCredentials => "pve_credentials",
            PveUnreachable => "pve_unreachable",
            PveRefused => "pve_refused",
            RelayFailed => "relay_failed",
            RelayTimeout => "relay_timeout",
            GuestClosed => "guest_closed",
            PveClosed => "pve_closed",
            IdleTimeout => "idle_timeout",
            MaxLength => "max_length",
            TakenOver => "taken_over",
            ShuttingDown => "shutting_down",
            MachineGone => "machine_gone",
            MachineStoppedMeanwhile => "machine_stopped_meanwhile",
            AccessWithdrawn => "access_withdrawn",
        }
    }

    /// Whether the session had started (an end) rather than being refused.
    pub fn is_end(self) -> bool {
        self.code() >= 4100
    }

    /// How a failed `vncproxy`/`termproxy` call reads to the user: PVE's reason class.
    pub fn from_proxy_error(e: &PveError) -> CloseReason {
        match e {
            PveError::PermissionDenied { .. } => CloseReason::PvePermission,
            PveError::Locked { .. } => CloseReason::PveLocked,
            PveError::NotFound(_) => CloseReason::PveNotFound,
            PveError::Busy(_) => CloseReason::PveBusy,
            PveError::Authentication(_) => CloseReason::PveCredentials,
            PveError::NotRunning(_) => CloseReason::MachineStopped,
            PveError::Unreachable(_) | PveError::Connection(_) | PveError::Timeout(_) | PveError::Tls(_) => {
                CloseReason::PveUnreachable
            }
            PveError::Api { status, .. } if (595..=599).contains(status) => CloseReason::PveUnreachable,
            _ => CloseReason::PveRefused,
        }
    }
}

/// The longest reason a close frame carries (125 bytes of payload minus the 2-byte code).
const MAX_REASON: usize = 123;

/// `text` cut to fit a close frame, on a character boundary.
pub fn frame_reason(text: &str) -> String {
    let text = text.trim();
    if text.len() <= MAX_REASON {
        return text.to_owned();
    }
    let mut end = MAX_REASON - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_in_the_application_range() {
        let mut codes: Vec<u16> = CloseReason::ALL.iter().map(|r| r.code()).collect();
        let mut names: Vec<&str> = CloseReason::ALL.iter().map(|r| r.name()).collect();
        assert!(codes.iter().all(|c| (4000..5000).contains(c)));
        codes.sort();
        codes.dedup();
        names.sort();
        names.dedup();
        assert_eq!((codes.len(), names.len()), (CloseReason::ALL.len(), CloseReason::ALL.len()));
        assert!(CloseReason::IdleTimeout.is_end() && !CloseReason::RelayFailed.is_end());
    }

    #[test]
    fn pve_refusals_keep_their_class() {
        let locked = PveError::from_response(500, "CT is locked (backup)", b"");
        assert_eq!(CloseReason::from_proxy_error(&locked), CloseReason::PveLocked);
        let denied = PveError::from_response(403, "Permission check failed (/vms/100, VM.Console)", b"");
        assert_eq!(CloseReason::from_proxy_error(&denied), CloseReason::PvePermission);
        let gone = PveError::from_response(500, "Configuration file 'nodes/pve1/lxc/5.conf' does not exist", b"");
        assert_eq!(CloseReason::from_proxy_error(&gone), CloseReason::PveNotFound);
        let stopped = PveError::from_response(500, "CT 101 not running", b"");
        assert_eq!(CloseReason::from_proxy_error(&stopped), CloseReason::MachineStopped);
        let proxy = PveError::from_response(596, "Broken pipe", b"");
        assert_eq!(CloseReason::from_proxy_error(&proxy), CloseReason::PveUnreachable);
        let other = PveError::from_response(500, "unable to find free port (5900-6000)", b"");
        assert_eq!(CloseReason::from_proxy_error(&other), CloseReason::PveRefused);
    }

    #[test]
    fn long_reasons_fit_a_close_frame() {
        let long = "é".repeat(100);
        let cut = frame_reason(&long);
        assert!(cut.len() <= MAX_REASON && cut.ends_with('…'), "{}", cut.len());
        assert_eq!(frame_reason(" short "), "short");
    }
}
