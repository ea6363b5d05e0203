"""The media plane: line, position and prompt audio legs, the frame switch, recording."""
