"""Running a built model on images: reading, predicting, COCO records, drawing."""
