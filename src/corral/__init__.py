"""Corral: a warehouse-native customer studio. Audiences compile to SQL in your warehouse."""

__version__ = "0.1.0"
