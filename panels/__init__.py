"""Sidebar panels of the add-on (3D View > Sidebar > Face)."""
