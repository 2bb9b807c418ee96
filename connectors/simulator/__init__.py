"""Channel simulator: a real aiohttp server standing in for a payment company.

    async with run_simulator(SimulatorConfig(channel_id="alpha", secret="s", banks={...})) as sim:
        sim.base_url, sim.ledger, sim.set_bank("ICBC", outage=True)

CLI: `python -m connectors.simulator --help`.
"""
from connectors.simulator.ledger import LedgerEntry
from connectors.simulator.profiles import BankProfile, SimulatorConfig, load_profile_file
from connectors.simulator.runner import RunningSimulator, run_simulator

__all__ = ["BankProfile", "LedgerEntry", "RunningSimulator", "SimulatorConfig", "load_profile_file", "run_simulator"]
