"""Pilot's campaign builder: the campaign form in steps, facts as rows, rules checked as typed."""
