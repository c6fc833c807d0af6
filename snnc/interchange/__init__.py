"""Interchange with other tools: NIR export and import (docs/NIR.md)."""
