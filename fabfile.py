"""Lets `fab -H user@host TASK` run from the repository root; the tasks live in deploy_tools/."""

from deploy_tools.fabfile import (
    deploy,
    logs,
    manage,
    provision,
    provision_balancer,
    provision_database,
    rollback,
    status,
)

__all__ = [
    "deploy",
    "logs",
    "manage",
    "provision",
    "provision_balancer",
    "provision_database",
    "rollback",
    "status",
]
