"""E1 ISDN PRI: Q.921 data link, Q.931 call control, frame transports and the span driver."""
