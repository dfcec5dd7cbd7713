"""Evaluation: nuScenes detection and tracking through the devkit, FID/FVD, PSNR/SSIM, cross-view consistency."""
