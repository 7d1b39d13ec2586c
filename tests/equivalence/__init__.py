"""Equivalence: every app in a catalogue behaves the same plain and instrumented, over both transports."""
