"""Draws tests/data/rough_sketch.png: a rough face of 26 strokes on the 256 face template (eyes at y~110,
mouth at y~199, as the FS2K pack is aligned). Run from the repository root."""
from PIL import Image, ImageDraw
S = 256
img = Image.new("L", (S, S), 255)
d = ImageDraw.Draw(img)
W = 2
k = 0  # stroke counter
def line(pts):
    global k; d.line(pts, fill=0, width=W, joint="curve"); k += 1
def arc(box, a0, a1):
    global k; d.arc(box, a0, a1, fill=0, width=W); k += 1
# face outline: cheeks to chin (template: eyes at y~110, mouth at y~199)
line([(40, 96), (42, 140), (54, 190), (80, 228), (123, 252), (166, 228), (192, 190), (204, 140), (206, 96)])
# hair: top and sides
arc((30, -10, 216, 150), 180, 360)
line([(30, 70), (24, 130), (28, 200), (18, 256)])
line([(216, 70), (222, 130), (218, 200), (228, 256)])
line([(46, 60), (90, 36), (140, 40), (190, 62)])
line([(60, 30), (100, 52), (150, 60), (200, 80)])
# ears
arc((28, 110, 48, 160), 90, 270)
arc((198, 110, 218, 160), 270, 90)
# eyebrows
line([(68, 94), (86, 89), (104, 93)])
line([(142, 93), (160, 89), (178, 94)])
# eyes: upper and lower lids, iris
arc((70, 102, 102, 120), 190, 350)
arc((70, 100, 102, 118), 20, 160)
arc((80, 104, 92, 116), 0, 360)
arc((144, 102, 176, 120), 190, 350)
arc((144, 100, 176, 118), 20, 160)
arc((154, 104, 166, 116), 0, 360)
# nose: bridge, tip, nostrils
line([(116, 118), (114, 140), (110, 160)])
line([(110, 164), (118, 170), (128, 170), (136, 164)])
arc((104, 158, 116, 170), 90, 250)
arc((130, 158, 142, 170), 290, 90)
# mouth: upper lip, lip line, lower lip
line([(100, 196), (112, 191), (123, 194), (134, 191), (146, 196)])
line([(100, 197), (123, 200), (146, 197)])
arc((106, 192, 140, 214), 20, 160)
# chin and neck
arc((110, 234, 136, 244), 20, 160)
line([(70, 218), (72, 256)])
line([(176, 218), (174, 256)])
img.save("tests/data/rough_sketch.png", optimize=True)
print(k, "strokes")
