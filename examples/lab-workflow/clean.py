"""One task of the `clean` job: normalise one CSV file. tether runs it once per input,
across the instance's cores, with the input downloaded from S3 and the output uploaded."""
import csv
import sys

source, target = sys.argv[1], sys.argv[2]
with open(source, newline="") as src, open(target, "w", newline="") as dst:
    writer = csv.writer(dst)
    for row in csv.reader(src):
        writer.writerow(cell.strip().lower() for cell in row)
