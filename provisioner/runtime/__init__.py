"""What every stage of a run shares while it runs: one halt, one observer, bounded workers.

Below every stage (like `provisioner.model`): the API client, the sinks, the engine and the CLI
all speak to a run through these, never to each other.
"""

from provisioner.runtime.halt import Halt
from provisioner.runtime.observer import Observer, Unobserved, current_observer, observing
from provisioner.runtime.workers import for_each

__all__ = ["Halt", "Observer", "Unobserved", "current_observer", "for_each", "observing"]
