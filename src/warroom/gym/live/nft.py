"""Packet loss and refused connections on loopback ports, with nftables (tc netem is not in
this kernel): real drops that TCP retransmits through, on new and established connections.

    reason = available()                  # None, or why nft cannot be used here
    table = Nft("warroom_gym")            # table inet warroom_gym, one output-hook chain
    table.add_drop(18301, percent=20)     # 20 % of the packets to and from port 18301 dropped
    table.add_reject(18302)               # connections to 18302 reset (ECONNREFUSED)
    table.remove_table()                  # everything undone (no error if it is gone)

Every rule matches loopback only (oifname "lo", ip daddr 127.0.0.1): the gym never touches
traffic that leaves the machine. Rules go in as a generated ruleset through `nft -f -`, from
values checked here (ports 1..65535, percent 0..100, table names of letters, digits and _):
nothing from outside reaches the ruleset text unchecked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

TABLE = "warroom_gym"
NFT_TIMEOUT_S = 10.0
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_LOOPBACK = 'oifname "lo" ip daddr 127.0.0.1'


class NftError(RuntimeError):
    """nft refused a ruleset or could not run (the message quotes its error)."""


def available() -> str | None:
    """Why the gym cannot use nftables here (not root, no nft, no netfilter), or None."""
    if os.geteuid() != 0:
        return "nftables rules need root"
    if _nft_binary() is None:
        return "nft is not installed (apt-get install nftables)"
    try:
        _run(["list", "tables"])
    except NftError as err:
        return f"nft does not work here: {err}"
    return None


def port_number(port: object) -> int:
    """A TCP port, checked: an int in 1..65535."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"not a TCP port: {port!r}")
    return port


def percentage(percent: object) -> int:
    """A drop probability in whole percent, checked: 0..100."""
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise ValueError(f"not a percentage: {percent!r}")
    if not 0 <= percent <= 100:
        raise ValueError(f"a percentage is 0..100, not {percent!r}")
    return round(percent)


class Nft:
    """One `inet` table of the gym's rules, with a single output-hook chain."""

    def __init__(self, table: str = TABLE) -> None:
        if not _TABLE_NAME.match(table):
            raise ValueError(f"bad nft table name {table!r}")
        self.table = table

    def __repr__(self) -> str:
        return f"Nft({self.table!r})"

    def table_ruleset(self) -> str:
        """The table and its chain (adding them again to an existing table changes nothing)."""
        return (
            f"table inet {self.table} {{\n"
            "  chain output {\n"
            "    type filter hook output priority 0; policy accept;\n"
            "  }\n"
            "}\n"
        )

    def drop_ruleset(self, port: int, percent: float, both_ways: bool = True) -> str:
        """The ruleset dropping `percent` % of the packets to `port` (and from it when
        `both_ways`: the server's answers and ACKs too, as a lossy link would)."""
        port, chance = port_number(port), percentage(percent)
        lines = [self.table_ruleset()]
        if chance == 0:
            return "".join(lines)
        # numgen's range is 0..99: a 100 % loss is an unconditional drop
        draw = "" if chance == 100 else f"numgen random mod 100 < {chance} "
        for direction in ("dport", "sport") if both_ways else ("dport",):
            lines.append(
                f"add rule inet {self.table} output {_LOOPBACK} tcp {direction} {port} "
                f'{draw}counter drop comment "warroom gym loss"\n'
            )
        return "".join(lines)

    def reject_ruleset(self, port: int) -> str:
        """The ruleset answering every packet to `port` with a TCP reset."""
        port = port_number(port)
        return self.table_ruleset() + (
            f"add rule inet {self.table} output {_LOOPBACK} tcp dport {port} "
            'counter reject with tcp reset comment "warroom gym reject"\n'
        )

    def add_drop(self, port: int, percent: float, both_ways: bool = True) -> None:
        """Drop `percent` % of the loopback packets to (and from) `port`."""
        _apply(self.drop_ruleset(port, percent, both_ways))

    def add_reject(self, port: int) -> None:
        """Reset every loopback connection to `port` (new ones are refused)."""
        _apply(self.reject_ruleset(port))

    def exists(self) -> bool:
        """Whether the table is in the kernel."""
        return self.table in _run(["list", "tables", "inet"]).split()

    def rules(self) -> list[str]:
        """The table's rules as nft prints them (empty when there is no table)."""
        if not self.exists():
            return []
        text = _run(["list", "table", "inet", self.table])
        return [line.strip() for line in text.splitlines() if " tcp " in line]

    def remove_table(self) -> bool:
        """Delete the table with its rules; False when there was none."""
        if not self.exists():
            return False
        _run(["delete", "table", "inet", self.table])
        return True


def _nft_binary() -> str | None:
    return shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")


def _apply(ruleset: str) -> None:
    """Load a ruleset atomically (nft -f: all of it or nothing)."""
    _run(["-f", "-"], ruleset)


def _run(args: list[str], stdin: str | None = None) -> str:
    binary = _nft_binary()
    if binary is None:
        raise NftError("nft is not installed")
    try:
        done = subprocess.run(
            [binary, *args], input=stdin, capture_output=True, text=True, timeout=NFT_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NftError(f"nft {' '.join(args)}: {err}") from err
    if done.returncode != 0:
        raise NftError(f"nft {' '.join(args)}: {done.stderr.strip()[-500:]}")
    return done.stdout
