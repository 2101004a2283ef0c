"""Workspace as code: YAML files that describe a whole workspace."""

from corral.workspace.files import Workspace, WorkspaceSettings, load_workspace, read_audience

__all__ = ["Workspace", "WorkspaceSettings", "load_workspace", "read_audience"]
